// The label sets of a job-keyed family (DNS checks, port targets): one per job key, made when
// the job appears and handed back when it goes (or changes so that its labels would), so its
// recorder removes every series it had. The two families differ only in which labels a job gets
// and which series they remove; the bookkeeping of a job list change is this one.

export class JobLabels<J extends { readonly key: string }, L> {
  private readonly byKey = new Map<string, L>();

  constructor(
    private readonly labelsOf: (job: J) => L,
    /** Whether a job that kept its key still fits its labels; default: it always does. */
    private readonly fits: (job: J, labels: L) => boolean = () => true,
  ) {}

  /** Makes the table equal to `jobs`; calls `gone` with the labels of each job removed. */
  set(jobs: readonly J[], gone: (key: string, labels: L) => void): void {
    const next = new Map(jobs.map((j) => [j.key, j]));
    for (const [key, labels] of this.byKey) {
      const j = next.get(key);
      if (j !== undefined && this.fits(j, labels)) continue;
      this.byKey.delete(key);
      gone(key, labels);
    }
    for (const [key, j] of next) if (!this.byKey.has(key)) this.byKey.set(key, this.labelsOf(j));
  }

  get(key: string): L | undefined {
    return this.byKey.get(key);
  }

  entries(): IterableIterator<[string, L]> {
    return this.byKey.entries();
  }
}
