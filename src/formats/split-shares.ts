/**
 * Splits work laid out in file order into `parts` contiguous shares of about equal
 * bytes, so each worker thread reads its own region of the file front to back.
 */
export function splitContiguousShares<T>(items: readonly T[], sizeOf: (item: T) => number, parts: number): T[][] {
  const total = items.reduce((sum, item) => sum + sizeOf(item), 0);
  const shares: T[][] = [[]];
  let acc = 0;
  for (const item of items) {
    const current = shares[shares.length - 1]!;
    if (current.length > 0 && acc >= (total / parts) * shares.length && shares.length < parts) shares.push([item]);
    else current.push(item);
    acc += sizeOf(item);
  }
  return shares;
}
