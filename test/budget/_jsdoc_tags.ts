// A check of the JSDoc in a source folder, for the way `deno doc` renders it:
// a block tag (`@throws`, `@default`, `@param`, ...) is only a tag at the start
// of a line (one written after text, or a second one on the same line, merges
// into the text before it), and a `@default {…}` value ends at its first `}`
// (so `{{ a: 1 }}` lost a brace).
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Every misplaced tag in the `.ts` files of `folder` (relative to the repository), as `file:line: text`. */
export function misplacedTags(folder: string): string[] {
  const root = fileURLToPath(new URL(`../../${folder}/`, import.meta.url));
  const found: string[] = [];
  for (const file of readdirSync(root).filter((name) => name.endsWith(".ts")).sort()) {
    const source = readFileSync(root + file, "utf8");
    for (const comment of source.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
      const first = source.slice(0, comment.index).split("\n").length;
      let inCode = false;
      comment[0].split("\n").forEach((raw, i) => {
        const line = raw.replace(/^\s*(\/\*\*|\*(?!\/))?\s?/, "").replace(/\s*\*\/\s*$/, "");
        if (line.trimStart().startsWith("```")) inCode = !inCode;
        if (inCode) return;
        // Block tags: an @ not inside an inline tag ({@linkcode x}) or code (`@memkit/memkit`).
        const tags = [...line.matchAll(/(?<![{\w`/])@([a-z]+)\b/g)];
        const where = `${folder}/${file}:${first + i}: ${line.trim()}`;
        if (tags.length > 1 || (tags.length === 1 && line.slice(0, tags[0].index).trim() !== "")) {
          found.push(`${where} (a tag must begin its line, one a line)`);
        }
        const value = tags.find((tag) => tag[1] === "default");
        if (value && !/^@default \{[^{}]+\}\s*$/.test(line.slice(value.index))) {
          found.push(`${where} (write @default {value}, without braces inside)`);
        }
      });
    }
  }
  return found;
}
