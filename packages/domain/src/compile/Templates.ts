/**
 * Template fields (`{{ inputs.x }}`, `{{ ctx.k }}`, `{{ run.outputs.n }}`): their syntax and what
 * each may read — no secrets in model or human text, context read in order, no node outputs
 * before any node runs. A valid template's node reads become data edges (DataEdges.ts).
 */
import { Either } from "effect"
import { didYouMean } from "../internal/text.js"
import * as Template from "../Template.js"
import type { IssuePath } from "../WorkflowGraph.js"
import type { Declarations } from "./Declarations.js"
import { type Issues, W } from "./Issues.js"

export type TemplateField = "context" | "model-text" | "human-text"

export interface NodeRead {
  readonly nodeId: string
  readonly offset: number
}

export type CheckTemplate = (path: IssuePath, text: string, field: TemplateField, contextPosition?: number) => ReadonlyArray<NodeRead>

/** Parses and checks one template field; returns the node ids it reads when it is valid. */
export const templateChecker = (declared: Declarations, issues: Issues): CheckTemplate => {
  const { report } = issues
  const { inputs, inputsByName, context, contextIndex, nodes, unknownNode } = declared
  return (path, text, field, contextPosition) => {
    const parsed = Template.parseTemplate(text)
    if (Either.isLeft(parsed)) {
      report(path, `template error: ${parsed.left.message}`, parsed.left.offset)
      return []
    }
    const reads: Array<{ nodeId: string; offset: number }> = []
    for (const ref of Template.references(parsed.right)) {
      switch (ref.root) {
        case "inputs": {
          const input = inputsByName.get(ref.name)
          if (input === undefined) {
            report(
              path,
              inputs.length === 0
                ? `{{ inputs.${ref.name} }}: this workflow declares no inputs`
                : `{{ inputs.${ref.name} }}: no input "${ref.name}" in workflow.inputs${
                  didYouMean(ref.name, inputsByName.keys())
                }`,
              ref.offset
            )
          } else if (input.type === "secret") {
            report(
              path,
              field === "context"
                ? `secret input "${ref.name}" cannot be read by a context value — context values end up in prompts`
                : `secret input "${ref.name}" cannot be interpolated into text sent to a ${
                  field === "human-text" ? "person" : "model"
                } — secrets may only feed tool credentials`,
              ref.offset
            )
          }
          break
        }
        case "ctx": {
          const at = contextIndex.get(ref.name)
          if (at === undefined) {
            report(
              path,
              context.length === 0
                ? `{{ ctx.${ref.name} }}: this workflow declares no context`
                : `{{ ctx.${ref.name} }}: no context key "${ref.name}" in workflow.context${
                  didYouMean(ref.name, contextIndex.keys())
                }`,
              ref.offset
            )
          } else if (contextPosition !== undefined && at >= contextPosition) {
            report(
              path,
              at === contextPosition
                ? `a context value cannot read itself ({{ ctx.${ref.name} }})`
                : `{{ ctx.${ref.name} }} is declared later (workflow.context[${at}]) — context entries are resolved in order`,
              ref.offset
            )
          }
          break
        }
        case "run.outputs":
          if (field === "context") {
            report(
              path,
              `a context value cannot read run.outputs — context is resolved before any node runs`,
              ref.offset
            )
          } else if (!nodes.has(ref.nodeId)) {
            report(path, `${ref.source}: ${unknownNode(ref.nodeId)}`, ref.offset)
          } else {
            reads.push({ nodeId: ref.nodeId, offset: ref.offset })
          }
          break
        case "run.id":
          report(path, `{{ run.id }} is only available in an output node's save_to`, ref.offset)
          break
      }
    }
    return reads
  }
}

/** The context values and agent system prompts; returns what each agent's prompt reads, by agent id. */
export const checkDeclaredTemplates = (
  declared: Declarations,
  checkTemplate: CheckTemplate
): ReadonlyMap<string, ReadonlyArray<NodeRead>> => {
  const { context, contextIndex, agentEntries } = declared
  context.forEach((entry, i) => {
    checkTemplate(W("context", i, "value"), entry.value, "context", contextIndex.get(entry.key) === i ? i : undefined)
  })
  const agentPromptReads = new Map<string, ReadonlyArray<{ readonly nodeId: string; readonly offset: number }>>()
  agentEntries.forEach((entry, i) => {
    if ("$ref" in entry) return
    const reads = checkTemplate(W("agents", i, "system_prompt"), entry.system_prompt, "model-text")
    if (!agentPromptReads.has(entry.id)) agentPromptReads.set(entry.id, reads)
  })
  return agentPromptReads
}
