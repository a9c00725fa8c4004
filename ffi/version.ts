/** memkit's version; the native library cache is keyed by it (kept equal to deno.json by a test). */
export const VERSION = "0.1.0";
