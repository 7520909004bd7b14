/**
 * Small helpers for user-facing messages shared by the workflow loader and graph compiler:
 * "did you mean" suggestions and readable lists.
 */

/** Edit distance counting a swap of neighbouring letters as one edit ("agnet" → "agent"). */
const distance = (a: string, b: string): number => {
  const rows: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number) => (rows[i] as Array<number>)[j] as number
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      ;(rows[i] as Array<number>)[j] = best
    }
  }
  return at(a.length, b.length)
}

/** "an agent", "a condition". */
export const withArticle = (word: string): string => `${/^[aeiou]/i.test(word) ? "an" : "a"} ${word}`

/** "a, b or c". */
export const orList = (items: ReadonlyArray<string>): string =>
  items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`

/** The candidate a typo most likely meant, if one is close enough to be worth suggesting. */
export const closest = (name: string, candidates: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  // Short names are all "close" to each other, so suggesting among them would be noise.
  const limit = name.length < 3 ? 0 : Math.max(1, Math.floor(name.length / 3))
  for (const candidate of candidates) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance && d <= limit && candidate.length > 1) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

export const didYouMean = (name: string, candidates: Iterable<string>): string => {
  const suggestion = closest(name, candidates)
  return suggestion === undefined ? "" : ` — did you mean "${suggestion}"?`
}

/** A short, single-line, quoted rendering of an authored value for a message. */
export const showValue = (value: unknown): string => {
  if (typeof value === "string") {
    const oneLine = value.replace(/\s+/g, " ")
    return JSON.stringify(oneLine.length > 40 ? `${oneLine.slice(0, 37)}...` : oneLine)
  }
  if (value === null || value === undefined) return "nothing"
  if (Array.isArray(value)) return "a list"
  if (typeof value === "object") return "a mapping"
  return String(value)
}

/** What kind of YAML value this is, for "expected X, got Y" messages. */
export const kindOf = (value: unknown): string => {
  if (value === null || value === undefined) return "nothing (null)"
  if (typeof value === "string") return `the string ${showValue(value)}`
  if (typeof value === "number") return `the number ${value}`
  if (typeof value === "boolean") return `the boolean ${value}`
  if (Array.isArray(value)) return "a list"
  if (typeof value === "object") return "a mapping"
  return typeof value
}
