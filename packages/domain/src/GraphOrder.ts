/**
 * The order of a workflow plan: a topological order that is reproducible (authored order breaks
 * ties), and, when there is none, one cycle to point the author at.
 */
import type { PlanEdge } from "./Plan.js"

/** Kahn's algorithm; among ready nodes the one authored first goes next, so plans are reproducible. */
export const kahn = (
  nodeIds: ReadonlyArray<string>,
  incoming: ReadonlyMap<string, ReadonlyArray<PlanEdge>>,
  outgoing: ReadonlyMap<string, ReadonlyArray<PlanEdge>>
): Array<string> => {
  const position = new Map(nodeIds.map((id, i) => [id, i]))
  // Unordered predecessors of each node, by authored position.
  const remaining = Int32Array.from(nodeIds, (id) => incoming.get(id)?.length ?? 0)
  // A binary min-heap of authored positions: a 2 MiB file can hold tens of thousands of nodes.
  const heap: Array<number> = []
  const push = (value: number) => {
    heap.push(value)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((heap[parent] as number) <= value) break
      heap[i] = heap[parent] as number
      i = parent
    }
    heap[i] = value
  }
  const pop = (): number => {
    const top = heap[0] as number
    const last = heap.pop() as number
    if (heap.length > 0) {
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        if (left >= heap.length) break
        const right = left + 1
        const child = right < heap.length && (heap[right] as number) < (heap[left] as number) ? right : left
        if ((heap[child] as number) >= last) break
        heap[i] = heap[child] as number
        i = child
      }
      heap[i] = last
    }
    return top
  }
  remaining.forEach((count, i) => {
    if (count === 0) push(i)
  })
  const order: Array<string> = []
  while (heap.length > 0) {
    const id = nodeIds[pop()] as string
    order.push(id)
    for (const edge of outgoing.get(id) ?? []) {
      const at = position.get(edge.to)
      if (at !== undefined && --remaining[at]! === 0) push(at)
    }
  }
  return order
}

/**
 * One cycle among the nodes Kahn could not order, as `a → b → … → a`. Every such node has an
 * unordered predecessor, so walking predecessors must revisit a node.
 */
export const findCycle = (
  nodeIds: ReadonlyArray<string>,
  ordered: ReadonlySet<string>,
  incoming: ReadonlyMap<string, ReadonlyArray<PlanEdge>>
): Array<string> => {
  const start = nodeIds.find((id) => !ordered.has(id))
  if (start === undefined) return []
  const seenAt = new Map<string, number>()
  const walk: Array<string> = []
  let current: string | undefined = start
  while (current !== undefined && !seenAt.has(current)) {
    seenAt.set(current, walk.length)
    walk.push(current)
    current = (incoming.get(current) ?? []).map((e) => e.from).find((id) => !ordered.has(id))
  }
  if (current === undefined) return walk
  const loop = walk.slice(seenAt.get(current)).reverse()
  // Start at the node authored first, so the closing edge is usually the one that looped back.
  const position = new Map(nodeIds.map((id, i) => [id, i]))
  let first = 0
  loop.forEach((id, i) => {
    if ((position.get(id) ?? 0) < (position.get(loop[first] as string) ?? 0)) first = i
  })
  const rotated = [...loop.slice(first), ...loop.slice(0, first)]
  return [...rotated, rotated[0] as string]
}
