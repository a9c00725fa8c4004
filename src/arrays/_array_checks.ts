// The errors for a bad index, the same for every array of this family
// (DynamicArray, SIMDArray, SharedDynamicArray), and the article its messages
// put before a type name. Made here, out of the hot paths, which only test and throw.
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

/**
 * `word` with the article it is read with: a type name's letters are spelled out
 * ("an i8", "an f32", "a u8"), a number is read as a number ("an 8-byte", "an
 * 11-byte", "a 16-byte"), another word by its first letter ("a bool").
 */
export function withArticle(word: string): string {
  const digits = /^\d+/.exec(word);
  let an: boolean;
  if (digits !== null) {
    const d = digits[0];
    // eight…, eighty…, eight hundred…; eleven and eighteen (thousand, million…) lead their group of three.
    an = d[0] === "8" || (d.length % 3 === 2 && (d.startsWith("11") || d.startsWith("18")));
  } else if (/^[a-z]\d/i.test(word)) {
    an = /^[aefhilmnorsx]/i.test(word); // ay, ef, aitch, eye, el, em, en, oh, ar, es, ex
  } else {
    an = /^[aeio]/i.test(word);
  }
  return `${an ? "an" : "a"} ${word}`;
}
