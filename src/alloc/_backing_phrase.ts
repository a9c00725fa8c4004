// How messages of the allocators over a backing (src/alloc) name that backing: one phrase, set off by commas, that
// reads well whatever the backing is. Before, a backing written as an object literal gave "its backing an object
// refused to take back ...", next to "its backing, an Arena, was disposed" on another path.
import { allocatorName } from "../base/_allocator_name.ts";
import { withArticle } from "../base/_validate.ts";

/**
 * "<whose> backing, <what it is>," for a message (`whose`: "its", "the", "The Arena's"): "its backing, an Arena,"
 * for a class name, "its backing, an object," or "its backing, a Proxy," for a backing that has none,
 * `its backing, MemoryInterface.getAllocator("pool"),` for a name memkit gave it, and `its backing, an object of
 * class "my heap",` for a class name that is not one as written in code (quoted and cut short). Read without
 * running the program's code (see allocatorName). The phrase ends with a comma: the clause goes on after it.
 */
export function backingPhrase(whose: string, backing: unknown): string {
  return `${whose} backing, ${backingNoun(backing)},`;
}

/** What `backing` is, for a message: "an Arena", "an object", "a Proxy", `an object of class "my heap"`... */
export function backingNoun(backing: unknown): string {
  const name = allocatorName(backing);
  if (/^[A-Za-z_$][\w$]*$/.test(name)) return withArticle(name); // a class name as written in code
  if (name.startsWith('"')) return `an object of class ${name}`; // an odd class name, quoted by allocatorName
  return name; // "an object", "a Proxy", or a name memkit gave it
}
