/**
 * The one error class of ckptguard. Its `code` is the same stable UPPER_SNAKE code
 * that appears as a problem code in reports, so a thrown reader error and a reported
 * problem are the same thing seen from two sides.
 */
export interface ErrorLocation {
  /** File the problem is in. */
  file?: string;
  /** Zip member name, when the problem is inside one. */
  member?: string;
  /** Absolute byte offset in the file (or in the member for pickle errors). */
  offset?: number;
  /** Dotted key path inside the checkpoint. */
  path?: string;
}

export class CkptError extends Error {
  override readonly name = "CkptError";
  readonly code: string;
  readonly where: ErrorLocation;

  constructor(code: string, message: string, where: ErrorLocation = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.where = where;
  }
}

export function isCkptError(value: unknown): value is CkptError {
  return value instanceof CkptError;
}

/** Renders a location as `file: member @offset (path)` for one-line messages. */
export function formatLocation(where: ErrorLocation): string {
  const parts: string[] = [];
  if (where.member !== undefined) parts.push(`member ${where.member}`);
  if (where.offset !== undefined) parts.push(`byte ${where.offset}`);
  if (where.path !== undefined) parts.push(`key ${where.path}`);
  return parts.join(", ");
}
