// The errors for a bad index, the same for every array of this family
// (DynamicArray, SIMDArray, SharedDynamicArray). Made here, out of the hot
// paths, which only test and throw.
import { describe } from "../base/_validate.ts";

/** The TypeError for an index that is not a number (no `valueOf` runs: it is never converted). */
export function indexTypeError(index: unknown, name: string, op: string): TypeError {
  return new TypeError(`Cannot ${op} a ${name} as 'index' must be a number: current value is ${describe(index)}`);
}

/** The RangeError for a number that is not an integer from 0 to `length - 1`. */
export function indexRangeError(index: number, length: number, name: string, op: string): RangeError {
  if (length === 0) {
    return new RangeError(
      `Cannot ${op} a ${name} as it is empty: no index is valid (current value is ${describe(index)})`,
    );
  }
  return new RangeError(
    `Cannot ${op} a ${name} as 'index' must be an integer from 0 to ${length - 1}: current value is ${describe(index)}`,
  );
}
