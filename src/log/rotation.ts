// When the CNI log is rotated and which old files go (Calico's
// log_file_max_size, log_file_max_age, log_file_max_count): the file is
// renamed to `<name>-<UTC time>.<ext>` (cni.log -> cni-2026-12-04T19-30-00.000.log,
// the shape Calico's lumberjack gives) when this write would take it past
// the size; of the renamed ones, those older than the age and all but the
// newest count are removed. Pure: the logger (logger.ts) stats, renames and
// removes.

export interface RotationLimits {
  /** Bytes a file may hold before it is rotated; 0: never rotated. */
  maxBytes: number;
  /** Days a rotated file is kept; 0: no age limit. */
  maxAgeDays: number;
  /** Rotated files kept; 0: no count limit. */
  maxCount: number;
}

/** Whether writing `adding` bytes to a file of `size` bytes rotates it first. */
export function needsRotation(size: number, adding: number, limits: RotationLimits): boolean {
  return limits.maxBytes > 0 && size > 0 && size + adding > limits.maxBytes;
}

/** The name a file `base` (no directory) is rotated to at `now`. */
export function rotatedName(base: string, now: Date): string {
  const { stem, ext } = split(base);
  const stamp = now.toISOString().replace(/:/g, "-").replace(/Z$/, "");
  return `${stem}-${stamp}${ext}`;
}

/**
 * The rotated files of `base` among `names` (a directory's entries) to
 * remove at `now`: older than the age limit, or past the newest `maxCount`.
 */
export function rotatedToRemove(
  base: string,
  names: readonly string[],
  limits: RotationLimits,
  now: Date,
): string[] {
  const { stem, ext } = split(base);
  const pattern = new RegExp(
    `^${escape(stem)}-(\\d{4}-\\d\\d-\\d\\dT\\d\\d)-(\\d\\d)-(\\d\\d\\.\\d{3})${escape(ext)}$`,
  );
  const rotated = names
    .flatMap((name) => {
      const match = pattern.exec(name);
      if (!match) return [];
      const at = Date.parse(`${match[1]}:${match[2]}:${match[3]}Z`);
      return Number.isNaN(at) ? [] : [{ name, at }];
    })
    .sort((a, b) => b.at - a.at || (a.name < b.name ? 1 : -1));
  const oldest = now.getTime() - limits.maxAgeDays * 86_400_000;
  return rotated
    .filter(
      (file, index) =>
        (limits.maxCount > 0 && index >= limits.maxCount) ||
        (limits.maxAgeDays > 0 && file.at < oldest),
    )
    .map((file) => file.name);
}

function split(base: string): { stem: string; ext: string } {
  const dot = base.lastIndexOf(".");
  return dot > 0 ? { stem: base.slice(0, dot), ext: base.slice(dot) } : { stem: base, ext: "" };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
