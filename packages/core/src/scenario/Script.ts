/**
 * What answers a scenario's model calls and tool calls: a cassette's recorded calls or scripted
 * answers (in order, or for one node), and scripted tool results. Nothing here reaches a network:
 * a model call nothing answers fails its node, and the scenario says at which node the cassette
 * (or the script) ran out.
 */
import { Effect, FiberRef, HashMap, Layer, Option, Ref, Stream } from "effect"
import { Llm } from "@relavium/domain"
import { DaemonRouter, LlmProvider, ToolError } from "@relavium/ports"
import type { ModelAnswer, ScriptedToolResult } from "./ScenarioFile.js"

/** Where a scenario's model answers come from. */
export type ModelSource =
  | { readonly _tag: "cassette"; readonly file: string; readonly calls: ReadonlyArray<ReadonlyArray<Llm.StreamChunk>> }
  | { readonly _tag: "script"; readonly answers: ReadonlyArray<ModelAnswer> }
  | { readonly _tag: "none" }

/** The chunks a scripted answer streams: its text, its tool calls, then a stop with its usage. */
export const answerChunks = (answer: ModelAnswer, callNumber: number): ReadonlyArray<Llm.StreamChunk> => {
  const scripted = typeof answer === "string" ? { text: answer } : answer
  const chunks: Array<Llm.StreamChunk> = []
  if (scripted.text !== undefined && scripted.text !== "") chunks.push({ type: "text_delta", text: scripted.text })
  const calls = scripted.tool_calls ?? []
  calls.forEach((call, i) => {
    const id = call.id ?? `call_${callNumber}_${i + 1}`
    chunks.push(
      { type: "tool_call_start", id, name: call.name },
      { type: "tool_call_delta", id, argsJsonDelta: JSON.stringify(call.args ?? {}) },
      { type: "tool_call_end", id }
    )
  })
  const usage = { inputTokens: scripted.usage?.input_tokens ?? 0, outputTokens: scripted.usage?.output_tokens ?? 0 }
  chunks.push({ type: "stop", stopReason: calls.length > 0 ? "tool_use" : "stop", usage })
  return chunks
}

/** The node whose fiber makes a call (agent nodes annotate their logs with it). */
const currentNode = Effect.map(FiberRef.get(FiberRef.currentLogAnnotations), (annotations) =>
  Option.match(HashMap.get(annotations, "nodeId"), { onNone: () => "(unknown)", onSome: String })
)

export interface ScenarioModel {
  readonly layer: Layer.Layer<LlmProvider>
  /** Why a model call found no answer (`cassette ran out of calls at node X …`), once one did not. */
  readonly ranOut: Effect.Effect<Option.Option<string>>
}

/**
 * The model of a scenario: call N answers with the N-th recorded (or scripted) call, except that
 * answers scripted for a node go to that node's calls first.
 */
export const makeModel = (source: ModelSource): Effect.Effect<ScenarioModel> =>
  Effect.gen(function* () {
    const ordered: Array<ReadonlyArray<Llm.StreamChunk>> = []
    const byNode = new Map<string, Array<ReadonlyArray<Llm.StreamChunk>>>()
    if (source._tag === "cassette") ordered.push(...source.calls)
    if (source._tag === "script") {
      source.answers.forEach((answer, i) => {
        const chunks = answerChunks(answer, i + 1)
        const node = typeof answer === "string" ? undefined : answer.node
        if (node === undefined) ordered.push(chunks)
        else byNode.set(node, [...(byNode.get(node) ?? []), chunks])
      })
    }
    const total = ordered.length + [...byNode.values()].reduce((n, list) => n + list.length, 0)
    const made = yield* Ref.make(0)
    const ranOut = yield* Ref.make(Option.none<string>())
    const exhausted = (node: string, call: number) =>
      source._tag === "cassette"
        ? `cassette ran out of calls at node ${node}: ${source.file} has ${total} recorded call${total === 1 ? "" : "s"}; call ${call} was made`
        : source._tag === "script"
          ? `scripted model ran out of answers at node ${node}: ${total} scripted; call ${call} was made`
          : `the model was called at node ${node}, but the scenario gives no cassette and no model answers`
    const layer = Layer.succeed(
      LlmProvider,
      LlmProvider.of({
        stream: (request) =>
          Stream.unwrap(
            Effect.gen(function* () {
              const node = yield* currentNode
              const call = yield* Ref.updateAndGet(made, (n) => n + 1)
              const chunks = byNode.get(node)?.shift() ?? ordered.shift()
              if (chunks === undefined) {
                const message = exhausted(node, call)
                yield* Ref.update(ranOut, (first) => Option.orElse(first, () => Option.some(message)))
                return yield* new Llm.LlmError({ kind: "bad_request", retryable: false, provider: request.provider, model: request.model, message })
              }
              return Stream.fromIterable(chunks).pipe(
                Stream.mapEffect((chunk) =>
                  chunk.type === "error" ? Effect.fail(new Llm.LlmError({ ...chunk.error, model: request.model })) : Effect.succeed(chunk)
                )
              )
            })
          )
      })
    )
    return { layer, ranOut: Ref.get(ranOut) }
  })

/**
 * Tool calls answered by the script instead of a tools daemon: a call takes the first unused
 * result for its tool (and node, when the result names one); a call with none left fails with
 * `tool_unavailable`, saying so.
 */
export const scriptedTools = (results: ReadonlyArray<ScriptedToolResult>): Layer.Layer<DaemonRouter> => {
  const left = results.map((result) => ({ ...result, used: false }))
  return Layer.succeed(
    DaemonRouter,
    DaemonRouter.of({
      tools: (names) =>
        Effect.succeed(names.map((name) => ({ name, description: `scripted ${name}`, parameters: { type: "object" } }))),
      execute: (call) => {
        const result =
          left.find((r) => !r.used && r.name === call.name && r.node === call.nodeId) ??
          left.find((r) => !r.used && r.name === call.name && r.node === undefined)
        if (result === undefined) {
          return Effect.fail(
            new ToolError({ code: "tool_unavailable", message: `no scripted result left for ${call.name} at node ${call.nodeId}` })
          )
        }
        result.used = true
        const output = typeof result.output === "string" ? result.output : JSON.stringify(result.output)
        return Effect.succeed({ output, isError: result.is_error ?? false })
      }
    })
  )
}
