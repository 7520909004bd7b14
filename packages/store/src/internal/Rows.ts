/** Helpers shared by the SQL repositories. */

/** JSON columns come back as text (SQLite) or already parsed (Postgres `json`). */
export const fromJson = (value: unknown): unknown => (typeof value === "string" ? JSON.parse(value) : value)

/** `items` in slices of at most `size` (none for no items), for multi-row INSERTs under the drivers' parameter limits. */
export const chunks = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> => {
  if (items.length === 0) return []
  if (items.length <= size) return [items]
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
