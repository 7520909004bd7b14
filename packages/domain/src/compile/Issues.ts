/**
 * The issues a workflow compilation collects: each with its path into the document (and, inside a
 * string, an offset), so the YAML loader can point at the line.
 */
import type { GraphIssue, IssuePath, PathSegment } from "../WorkflowGraph.js"

export class Issues {
  readonly list: Array<GraphIssue> = []
  readonly report = (path: IssuePath, message: string, offset?: number): void => {
    this.list.push(offset === undefined ? { path, message } : { path, message, offset })
  }
  /** Points at the mapping key named by the path's last segment rather than at its value. */
  readonly reportAtKey = (path: IssuePath, message: string): void => {
    this.list.push({ path, message, at: "key" })
  }
}

/** A path under `workflow` ("W" keeps the many paths short). */
export const W = (...rest: Array<PathSegment>): IssuePath => ["workflow", ...rest]
