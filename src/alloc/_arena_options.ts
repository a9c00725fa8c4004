// The options of an Arena and the modes of its reset(), validated at the
// public boundary (TypeError for a wrong type, RangeError for a bad number).
import { native } from "../../ffi/native.ts";
import {
  describe,
  integerIn,
  isArrayOrRevoked,
  MAX_BLOCK_SIZE,
  parseOptions,
  powerOfTwo,
  typeCheck,
  z,
} from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { roundToPage } from "./_chunks.ts";
import type { ArenaGrowth, ArenaOptions } from "./arena_types.ts";

// What `alignment` takes, said by every refusal of it (the page size is the machine's, read when one is made).
function alignmentExpected(): string {
  return `must be "natural", "cache-line", "page" or a power of two from 1 to ${native.pageSize}`;
}

const OptionsSchema = z.object({
  capacity: integerIn(1, MAX_BLOCK_SIZE).optional(),
  growth: z.enum(["fixed", "linear", "exponential", "adaptive"]).optional(),
  // Any number here; which numbers is checked once the page size is known (parseArenaOptions).
  alignment: z.union([z.enum(["natural", "cache-line", "page"]), z.number()], { error: alignmentExpected })
    .optional(),
  maxCapacity: integerIn(1, MAX_BLOCK_SIZE).optional(),
  backing: typeCheck<Allocator | null>(
    (v) => v === null || (typeof v === "object" && typeof (v as Allocator).alloc === "function"),
    "must be an Allocator or null",
  ).optional(),
  timing: z.boolean().optional(),
  safety: z.boolean().optional(),
}).strict();

// reset()'s object mode, an options object: an unknown key is a TypeError naming it (parseOptions), also when it
// stands for a misspelt retainLimit (so retainLimit is optional here, and found missing after).
const RetainSchema = z.object({ retainLimit: integerIn(0, MAX_BLOCK_SIZE).optional() }).strict();

/** An Arena's options with their defaults applied. */
export interface ArenaSettings {
  /** Default alignment: "natural" (16 for alloc, the element size for arrays) or a power of two. */
  alignment: "natural" | number;
  /** The first chunk's size, whole pages. */
  capacity: number;
  maxCapacity: number;
  growth: ArenaGrowth;
  /** undefined: the shared SystemAllocator; null: one chunk, no growth. */
  backing: Allocator | null | undefined;
  timing: boolean;
  safety: boolean;
}

/** Validates `options` and applies the defaults. */
export function parseArenaOptions(options: ArenaOptions): ArenaSettings {
  const parsed = parseOptions(OptionsSchema, options, "create Arena");
  const pageSize = native.pageSize;
  let alignment: "natural" | number;
  if (parsed.alignment === undefined || parsed.alignment === "natural") alignment = "natural";
  else if (parsed.alignment === "cache-line") alignment = 64;
  else if (parsed.alignment === "page") alignment = pageSize;
  else {
    const schema = z.object({ alignment: powerOfTwo(pageSize, 1, alignmentExpected()) });
    alignment = parseOptions(schema, parsed, "create Arena").alignment;
  }
  const capacity = roundToPage(parsed.capacity ?? 1 << 20);
  const maxCapacity = parsed.maxCapacity ?? MAX_BLOCK_SIZE;
  if (capacity > maxCapacity) {
    throw new RangeError(
      `Cannot create Arena as 'maxCapacity' must be at least 'capacity' rounded up to whole pages (${capacity} ` +
        `bytes): current value is ${maxCapacity}`,
    );
  }
  return {
    alignment,
    capacity,
    maxCapacity,
    growth: parsed.growth ?? "exponential",
    backing: parsed.backing,
    timing: parsed.timing ?? false,
    safety: parsed.safety ?? true,
  };
}

/** Validates a reset() mode. */
export function parseResetMode(mode: unknown): "free-all" | "retain-capacity" | { retainLimit: number } {
  if (mode === "free-all" || mode === "retain-capacity") return mode;
  if (typeof mode === "object" && mode !== null && !isArrayOrRevoked(mode)) {
    const { retainLimit } = parseOptions(RetainSchema, mode, "reset");
    if (retainLimit === undefined) throw new TypeError("Cannot reset as option 'retainLimit' is required and missing");
    return { retainLimit };
  }
  throw new TypeError(
    `Cannot reset as 'mode' must be "free-all", "retain-capacity" or { retainLimit }: current value is ${
      describe(mode)
    }`,
  );
}
