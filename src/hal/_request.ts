// Reading and checking an allocation request. A request is read once, field
// by field (so a getter or Proxy trap runs before anything changes), by hand
// rather than through zod: it is on every allocation's path, and zod's parse
// costs several times the allocation itself. The rules of which types, flags
// and allocators go together live here too.
import { native } from "../../ffi/native.ts";
import { describe, isArrayOrRevoked, isRevokedProxy } from "../base/_validate.ts";
import type { AllocatorKind } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import type { MemoryFlag, MemoryType } from "./memory_types.ts";
import { checkAlignment, checkSize, describeValue } from "./_words.ts";

/** Every memory type, in the order of their indices. */
export const TYPES: readonly MemoryType[] = [
  "system",
  "video",
  "audio",
  "network",
  "shared",
  "temporary",
  "stack",
  "pool",
] as const;

/** Type indices. */
export const T_SYSTEM = 0,
  T_VIDEO = 1,
  T_AUDIO = 2,
  T_NETWORK = 3,
  T_SHARED = 4,
  T_TEMPORARY = 5,
  T_STACK = 6,
  T_POOL = 7;

/** A type's index by name, or -1 for anything else (a switch: no lookup in a dictionary, no "toString"). */
export function typeIndexOf(type: unknown): number {
  switch (type) {
    case "system":
      return T_SYSTEM;
    case "video":
      return T_VIDEO;
    case "audio":
      return T_AUDIO;
    case "network":
      return T_NETWORK;
    case "shared":
      return T_SHARED;
    case "temporary":
      return T_TEMPORARY;
    case "stack":
      return T_STACK;
    case "pool":
      return T_POOL;
    default:
      return -1;
  }
}

const FLAGS: readonly MemoryFlag[] = ["zero", "cacheable", "dma-capable", "temporary", "secret"];
/** Flag bits. */
export const F_ZERO = 1, F_CACHEABLE = 2, F_DMA = 4, F_TEMPORARY = 8, F_SECRET = 16;
const FLAG_BIT: Readonly<Record<string, number>> = Object.assign(
  Object.create(null),
  Object.fromEntries(FLAGS.map((f, i) => [f, 1 << i])),
);

/** The allocator kinds the interface holds (no "debug"). */
export const KINDS: readonly AllocatorKind[] = ["system", "arena", "stack", "pool", "buddy", "free-list"];

/** Each type's own allocator kind. */
export const OWN_KIND: readonly AllocatorKind[] = [
  "system",
  "free-list",
  "system",
  "pool",
  "system",
  "arena",
  "stack",
  "pool",
];

/** The empty flag list every allocation without flags shares. */
export const NO_FLAGS: MemoryFlag[] = Object.freeze([]) as unknown as MemoryFlag[];

/** A checked request. */
export interface Request {
  size: number;
  /** The type index that serves it (the `temporary` flag turns `system` into `temporary`). */
  type: number;
  /** The alignment asked for, or 0 for the type's own. */
  alignment: number;
  /** Flag bits, and the flags as a frozen list. */
  bits: number;
  flags: MemoryFlag[];
  preferred: AllocatorKind | undefined;
  timeoutMs: number;
  allowFallback: boolean;
  name: string | undefined;
}

const KNOWN_FIELDS = new Set([
  "size",
  "type",
  "alignment",
  "flags",
  "preferredAllocator",
  "timeoutMs",
  "allowFallback",
  "name",
]);

/** Whether `key` is a field of AllocationRequest (a switch: cheaper than a Set lookup on every allocation). */
export function isKnownField(key: string): boolean {
  switch (key) {
    case "size":
    case "type":
    case "alignment":
    case "flags":
    case "preferredAllocator":
    case "timeoutMs":
    case "allowFallback":
    case "name":
      return true;
    default:
      return false;
  }
}

/** The error for a request field that is not known. */
export function unknownFieldError(key: string, op: string): TypeError {
  return new TypeError(
    `Cannot ${op} as option ${describe(key)} is not known: expected only ${[...KNOWN_FIELDS].join(", ")}`,
  );
}

/** `request` as an object whose fields can be read, or TypeError (an array, a revoked Proxy, no object). */
export function requestObject(request: unknown, op: string): Record<string, unknown> {
  if (typeof request !== "object" || request === null || isArrayOrRevoked(request)) {
    throw new TypeError(
      `Cannot ${op} as 'request' must be a request object ({ size, type, ... }) or a size: current value is ${
        describeValue(request)
      }`,
    );
  }
  return request as Record<string, unknown>;
}

/**
 * What a read of `value` (a request, its flags) threw: a Proxy revoked meanwhile (by its own trap: every later
 * read throws the engine's TypeError) is refused in the library's words; anything else (a getter's own error)
 * goes on as it was thrown.
 */
export function unreadable(error: unknown, value: unknown, name: string, op: string): unknown {
  if (!isRevokedProxy(value)) return error;
  return new TypeError(
    `Cannot ${op} as '${name}' is a Proxy that was revoked while it was read: nothing more can be read from it; ` +
      "pass the object itself, or a Proxy that stays usable",
    { cause: error },
  );
}

/**
 * Reads and checks `allocate(request)`'s request. (`MemoryInterface.allocate`
 * reads the fields itself, the same way, to send a plain request to its fast
 * path, and checks the rest with {@linkcode checkFields}.)
 */
export function readRequest(request: unknown, op: string): Request {
  // Each field read once, here, before anything else happens.
  const r = requestObject(request, op);
  let size, type, alignment, flags, preferred, timeoutMs, allowFallback, name;
  try {
    size = r.size, type = r.type, alignment = r.alignment, flags = r.flags, preferred = r.preferredAllocator;
    timeoutMs = r.timeoutMs, allowFallback = r.allowFallback, name = r.name;
    for (const key in r) if (!isKnownField(key)) throw unknownFieldError(key, op);
  } catch (error) {
    throw unreadable(error, r, "request", op);
  }
  return checkFields(size, type, alignment, flags, preferred, timeoutMs, allowFallback, name, op);
}

/** Checks a request's fields, read once by the caller (after it checked that every key is known). */
export function checkFields(
  size: unknown,
  type: unknown,
  alignment: unknown,
  flags: unknown,
  preferred: unknown,
  timeoutMs: unknown,
  allowFallback: unknown,
  name: unknown,
  op: string,
): Request {
  if (size === undefined) throw new TypeError(`Cannot ${op} as option 'size' is required and missing`);
  if (timeoutMs !== undefined) checkTimeout(timeoutMs, op);
  if (allowFallback !== undefined && typeof allowFallback !== "boolean") {
    throw new TypeError(
      `Cannot ${op} as 'allowFallback' must be a boolean: current value is ${describeValue(allowFallback)}`,
    );
  }
  if (name !== undefined && typeof name !== "string") {
    throw new TypeError(`Cannot ${op} as 'name' must be a string: current value is ${describeValue(name)}`);
  }
  return checkRequest(
    size,
    type,
    alignment,
    flags,
    preferred,
    op,
    (timeoutMs as number | undefined) ?? 0,
    allowFallback === true,
    name as string | undefined,
  );
}

/** Checks the parts of a request (also `allocateTyped`'s arguments). */
export function checkRequest(
  size: unknown,
  type: unknown,
  alignment: unknown,
  flags: unknown,
  preferred: unknown,
  op: string,
  timeoutMs = 0,
  allowFallback = false,
  name: string | undefined = undefined,
  typeRequired = false,
): Request {
  checkSize(size, op, "size", undefined, 1);
  let t = T_SYSTEM;
  if (type === undefined && typeRequired) {
    // allocateTyped(size, type): JavaScript lets a caller leave the type out; system memory is allocate(size).
    throw new TypeError(
      `Cannot ${op} as 'type' must be one of ${TYPES.join(", ")}: current value is undefined ` +
        "(allocateTyped(size, type) takes the type; allocate(size) serves system memory)",
    );
  }
  if (type !== undefined) {
    t = typeIndexOf(type);
    if (t < 0) {
      throw new TypeError(
        `Cannot ${op} as 'type' must be one of ${TYPES.join(", ")}: current value is ${describeValue(type)}`,
      );
    }
  }
  const a = alignment === undefined ? 0 : checkAlignment(alignment, op, native.pageSize, 16, "alignment");
  const { bits, list } = readFlags(flags, op);
  if (preferred !== undefined) checkKind(preferred, op, "preferredAllocator");
  t = checkCombination(t, bits, preferred as AllocatorKind | undefined, name, op);
  return {
    size: size as number,
    type: t,
    alignment: a,
    bits,
    flags: list,
    preferred: preferred as AllocatorKind | undefined,
    timeoutMs,
    allowFallback,
    name,
  };
}

/** An allocator kind the interface holds; "debug" is a kind it has none of. */
export function checkKind(kind: unknown, op: string, name: string): AllocatorKind {
  if (kind === "debug") {
    throw new AllocationError(
      "unsupported",
      `Cannot ${op} as the interface holds no debug allocator: '${name}' must be one of ${KINDS.join(", ")}`,
    );
  }
  if (typeof kind !== "string" || !KINDS.includes(kind as AllocatorKind)) {
    throw new TypeError(
      `Cannot ${op} as '${name}' must be one of ${KINDS.join(", ")}: current value is ${describeValue(kind)}`,
    );
  }
  return kind as AllocatorKind;
}

/** `timeoutMs`: a number from 0, `Infinity` allowed. */
export function checkTimeout(value: unknown, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as 'timeoutMs' must be a number: current value is ${describeValue(value)}`);
  }
  if (!(value >= 0)) {
    throw new RangeError(
      `Cannot ${op} as 'timeoutMs' must be at least 0 (Infinity: no limit): current value is ${describeValue(value)}`,
    );
  }
  return value;
}

const NONE: { readonly bits: number; readonly list: MemoryFlag[] } = Object.freeze({ bits: 0, list: NO_FLAGS });

// An array of flags, each at most once. A Proxy of an array passes Array.isArray: its length is read once (its
// trap may answer differently each time) and must be an array's length, an integer from 0, that a list of
// distinct flags can have; then each element below it once.
function readFlags(flags: unknown, op: string): { readonly bits: number; readonly list: MemoryFlag[] } {
  if (flags === undefined) return NONE;
  if (isRevokedProxy(flags) || !Array.isArray(flags)) {
    throw new TypeError(
      `Cannot ${op} as 'flags' must be an array of flags (${FLAGS.join(", ")}): current value is ${
        describeValue(flags)
      }`,
    );
  }
  let length: unknown;
  try {
    length = flags.length;
  } catch (error) {
    throw unreadable(error, flags, "flags", op);
  }
  if (typeof length !== "number") {
    throw new TypeError(
      `Cannot ${op} as 'flags' must be an array of flags (${FLAGS.join(", ")}): its length reads ${
        describe(length)
      }, not a number`,
    );
  }
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(
      `Cannot ${op} as 'flags' must be an array of at most ${FLAGS.length} flags: its length reads ${
        describe(length)
      }, not an integer from 0 to ${FLAGS.length}`,
    );
  }
  if (length > FLAGS.length) {
    throw new RangeError(
      `Cannot ${op} as 'flags' must hold each of ${FLAGS.join(", ")} at most once: current length is ${length}`,
    );
  }
  let bits = 0;
  for (let i = 0; i < length; i++) {
    let flag: unknown;
    try {
      flag = flags[i];
    } catch (error) {
      throw unreadable(error, flags, "flags", op);
    }
    const bit = typeof flag === "string" ? FLAG_BIT[flag] ?? 0 : 0;
    if (bit === 0) {
      throw new TypeError(
        `Cannot ${op} as 'flags[${i}]' must be one of ${FLAGS.join(", ")}: current value is ${describeValue(flag)}`,
      );
    }
    if (bits & bit) {
      throw new TypeError(`Cannot ${op} as 'flags' names ${JSON.stringify(flag)} twice`);
    }
    bits |= bit;
  }
  return { bits, list: bits === 0 ? NO_FLAGS : Object.freeze(FLAGS.filter((_, i) => bits & (1 << i))) as MemoryFlag[] };
}

function conflictError(op: string, what: string, why: string): TypeError {
  return new TypeError(`Cannot ${op} as ${what} do not go together: ${why}`);
}

// Which types, flags and allocators go together; returns the type that serves the request.
function checkCombination(
  type: number,
  bits: number,
  preferred: AllocatorKind | undefined,
  name: string | undefined,
  op: string,
): number {
  const typeName = TYPES[type];
  if (bits & F_TEMPORARY) {
    if (type !== T_SYSTEM && type !== T_TEMPORARY) {
      throw conflictError(
        op,
        `the flag "temporary" and the type "${typeName}"`,
        "temporary memory comes from the arena",
      );
    }
    type = T_TEMPORARY;
  }
  if (bits & F_SECRET) {
    if (type === T_SHARED) {
      throw conflictError(
        op,
        `the flag "secret" and the type "shared"`,
        "a secret must not be readable by other processes, shared memory is",
      );
    }
    if (type !== T_SYSTEM) {
      throw conflictError(
        op,
        `the flag "secret" and the type "${TYPES[type]}"${bits & F_TEMPORARY ? ' (from the flag "temporary")' : ""}`,
        "a secret gets a mapping of its own, fenced by guard pages (use the system type)",
      );
    }
  }
  if (bits & F_DMA && type !== T_SYSTEM && type !== T_AUDIO) {
    throw conflictError(
      op,
      `the flag "dma-capable" and the type "${TYPES[type]}"`,
      "DMA-capable memory is locked pages (the system or audio type)",
    );
  }
  if (preferred !== undefined) {
    const own = bits & (F_SECRET | F_DMA) ? "system" : OWN_KIND[type];
    if (preferred !== own && (type !== T_SYSTEM || bits & (F_SECRET | F_DMA))) {
      throw conflictError(
        op,
        `preferredAllocator ${JSON.stringify(preferred)} and ${
          bits & (F_SECRET | F_DMA) ? "the flags asked for" : `the type "${TYPES[type]}"`
        }`,
        `that memory comes only from its own "${own}" allocator (only the system type takes any allocator)`,
      );
    }
  }
  if (name !== undefined && type !== T_SHARED) {
    throw conflictError(op, `'name' and the type "${TYPES[type]}"`, "only shared memory has a name");
  }
  return type;
}
