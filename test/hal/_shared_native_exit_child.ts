// `_shared_native_exit_child.ts <dir> <how>` (shared_exit_native_test.ts runs it): hands three files in <dir> to
// libmemkit's table of names to unlink at the process's exit, with no JavaScript exit hook of memkit's: "kept"
// stays listed, "forgotten" is taken off the list again, "replaced" is listed and then replaced by another file
// of the same name (another inode). Prints the three slots, then ends by returning ("end"), by an uncaught error
// ("throw"), by process.exit(3) ("exit"), or with a Worker still running ("running": process.exit(0)).
import { lstatSync, renameSync, writeFileSync } from "node:fs";
import process from "node:process";
import { native, nativeReady } from "../../ffi/native.ts";

const [dir, how] = process.argv.slice(-2);
await nativeReady();
const lib = native.memkit!;
const listed = (name: string) => {
  const path = `${dir}/${name}`;
  writeFileSync(path, name);
  const stat = lstatSync(path, { bigint: true });
  return lib.mk_unlink_at_exit!(new TextEncoder().encode(`${path}\0`), stat.dev, stat.ino);
};
const slots = { kept: listed("kept"), forgotten: listed("forgotten"), replaced: listed("replaced") };
lib.mk_forget_at_exit!(slots.forgotten);
writeFileSync(`${dir}/other`, "another object"); // made while the old one lives: another inode
renameSync(`${dir}/other`, `${dir}/replaced`);
console.log(JSON.stringify(slots));
if (how === "throw") throw new Error("the program fails");
if (how === "exit") process.exit(3);
if (how === "running") {
  const worker = new Worker(
    `data:text/javascript,postMessage("up"); setInterval(() => {}, 1000);`,
    { type: "module" },
  );
  await new Promise((resolve) => (worker.onmessage = resolve));
  process.exit(0);
}
