// Telling purged pages from kept ones on Linux, where madvise(MADV_FREE) says
// nothing afterwards: the kernel discards a lazily freed page only while it is
// clean, and a discarded page reads back as zeros. So before the advice, the
// first word of every page is saved aside and replaced by a non-zero sentinel;
// afterwards, a compare-exchange per page puts the saved word back only where
// the sentinel is still there. The exchange is a locked write: once it has
// succeeded the page is dirty again, and the kernel keeps a dirty page (it
// re-checks the dirty bit after unmapping a lazily freed page), so a page
// cannot be discarded between the check and the restore.

/** The saved first words of a range of pages, and the sentinel written over them. */
export class PageSentinels {
  readonly #pages: number;
  readonly #wordsPerPage: number;
  readonly #saved: BigInt64Array;
  readonly #sentinel: bigint;

  constructor(pages: number, pageSize: number) {
    this.#pages = pages;
    this.#wordsPerPage = pageSize / 8;
    this.#saved = new BigInt64Array(pages);
    const random = new BigInt64Array(1);
    do crypto.getRandomValues(random); while (random[0] === 0n);
    this.#sentinel = random[0];
  }

  /** Saves each page's first word and writes the sentinel there. */
  plant(words: BigInt64Array): void {
    for (let p = 0; p < this.#pages; p++) {
      const i = p * this.#wordsPerPage;
      this.#saved[p] = words[i];
      words[i] = this.#sentinel;
    }
  }

  /** Puts the saved words back (an undo of `plant` before any advice). */
  unplant(words: BigInt64Array): void {
    for (let p = 0; p < this.#pages; p++) words[p * this.#wordsPerPage] = this.#saved[p];
  }

  /**
   * Restores every page still holding the sentinel and counts the pages that
   * lost it (discarded by the kernel): 0 means every page was kept.
   */
  collect(words: BigInt64Array): number {
    let lost = 0;
    for (let p = 0; p < this.#pages; p++) {
      const i = p * this.#wordsPerPage;
      if (Atomics.compareExchange(words, i, this.#sentinel, this.#saved[p]) !== this.#sentinel) lost++;
    }
    return lost;
  }
}
