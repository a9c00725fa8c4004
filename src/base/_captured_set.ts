// A Set's values read with built-ins captured when memkit loaded: the leak check at exit reads the census
// lists this way, and a program may replace the Set iterator before it exits (a no-op one hid every leak
// but the global allocator's).

const apply = Reflect.apply;
const setValues = Set.prototype.values;
const setIteratorNext: () => IteratorResult<unknown> = Object.getPrototypeOf(new Set().values()).next;

/** `[...set]`, in insertion order, whatever the program did to Set.prototype since. */
export function valuesOf<T>(set: Set<T>): T[] {
  const out: T[] = [];
  const iterator = apply(setValues, set, []);
  for (
    let step = apply(setIteratorNext, iterator, []) as IteratorResult<T>;
    !step.done;
    step = apply(setIteratorNext, iterator, []) as IteratorResult<T>
  ) {
    out[out.length] = step.value;
  }
  return out;
}
