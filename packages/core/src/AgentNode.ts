/**
 * The agent node: the shared `AgentLoop` with a workflow's hooks. Call the
 * model with the conversation and the tools; the approval hook follows the
 * workflow (a tool the agent was not given, or a call its tool policy refuses,
 * is denied without reaching a daemon); route the other tool calls through
 * DaemonRouter (whose daemon enforces the policy again, with what only its
 * host can check); feed the results back and checkpoint each completed turn
 * (`agent:turn_completed`); stop when the model answers without tool calls, or
 * fail at the turn limit. Budgets are checked before every model call; usage
 * and cost are counted by the loop.
 */
import { Effect, Either, Exit, Option } from "effect"
import type { FileSystem } from "@effect/platform"
import { Cost, type Llm, RunError, type RunEvent as RE, type Tool, ToolPolicyCheck, type Workflow } from "@relavium/domain"
import { DaemonRouter, ToolError } from "@relavium/ports"
import { interpolate } from "./Interpolate.js"
import { validateJson } from "./JsonValidation.js"
import { LlmProvider, ModelPricing } from "@relavium/ports"
import * as AgentLoop from "./AgentLoop.js"
import * as ModelCall from "./ModelCall.js"
import { completed, type NodeContext, type NodeOutcome, outputsFor, suspended } from "./NodeContext.js"
import { nodeState } from "./RunState.js"
import { makeOutputForwarder } from "./ToolOutputForward.js"
import { SpanName } from "./Telemetry.js"

/** Tool continuations allowed after the first model call. */
export const TURN_LIMIT = 16
/** Assumed completion size for budget checks when the agent sets no max_tokens. */
const DEFAULT_MAX_TOKENS = 4096
/** What a settled tool call gives the model: its output, or why it failed. */
interface ToolOutcome {
  readonly ok: boolean
  readonly code: string | undefined
  readonly text: string
}
const failedOutcome = (error: Tool.ToolError): ToolOutcome => ({ ok: false, code: error.code, text: error.message })

export const budgetGateId = (runId: string, nodeId: string) => `${runId}:${nodeId}:budget`

const parseStructured = (text: string, schema: Readonly<Record<string, unknown>>) =>
  Effect.suspend(() => {
    const body = text.trim().replace(/^```(?:json)?\s*([\s\S]*?)\s*```$/, "$1")
    let value: unknown
    try {
      value = JSON.parse(body)
    } catch {
      return Effect.fail(RunError.nodeFailure("validation", "the model's answer is not JSON, but the node has an output_schema"))
    }
    const problems = validateJson(schema, value)
    return problems.length === 0
      ? Effect.succeed(value)
      : Effect.fail(RunError.nodeFailure("validation", `the model's answer does not match output_schema: ${problems.join("; ")}`))
  })

export const runAgent = (
  context: NodeContext<Workflow.NodeOf<"agent">>
): Effect.Effect<
  NodeOutcome,
  RunError.NodeFailure,
  LlmProvider | ModelPricing | DaemonRouter | FileSystem.FileSystem
> =>
  Effect.gen(function* () {
    const { node, plan, runId } = context
    const agent = plan.agents.get(node.agent_ref)
    if (agent === undefined) {
      return yield* RunError.nodeFailure("validation", `agent '${node.agent_ref}' is not defined`)
    }
    const pricing = yield* ModelPricing
    const llm = yield* LlmProvider
    const router = yield* DaemonRouter
    const model = node.model ?? agent.model
    const provider = agent.provider
    const maxTokens = node.max_tokens ?? agent.max_tokens
    const outputSchema = node.output_schema ?? agent.output_schema
    const scope = { inputs: context.inputs, ctx: context.ctx, outputs: outputsFor(context), runId }

    const systemParts = [agent.system_prompt, node.system_prompt_append].filter((s): s is string => !!s)
    const system = (yield* Effect.forEach(systemParts, (part) => interpolate(part, scope))).join("\n\n")
    const prompt =
      node.prompt_template !== undefined
        ? yield* interpolate(node.prompt_template, scope)
        : JSON.stringify({ inputs: context.inputs, outputs: scope.outputs })
    const toolNames = node.tools ?? agent.tools ?? []
    const tools =
      toolNames.length === 0
        ? []
        : yield* router.tools(toolNames).pipe(Effect.mapError((e) => RunError.nodeFailure(e.code, e.message)))

    const budget = plan.spec.budget
    const timestamp = context.timestamp
    let budgetWarned = context.state.budgetWarned
    // Continue after the node's last completed turn, if an earlier attempt (or the same one, before
    // a crash or a budget gate) made any: their calls are paid for and their tools have run.
    const checkpoints = nodeState(context.state, node.id).turns ?? []
    const last = checkpoints.at(-1)
    const messages: Array<Llm.LlmMessage> = [
      { role: "user", content: [{ type: "text", text: prompt }] },
      ...checkpoints.flatMap((c) => c.messages)
    ]
    /** Reports one call as the loop counted it (cost:updated carries the run's running total). */
    const account = (charge: AgentLoop.Charge) =>
      context.emit([
        {
          type: "cost:updated",
          runId,
          timestamp: timestamp(),
          nodeId: node.id,
          model,
          inputTokens: charge.usage.inputTokens,
          outputTokens: charge.usage.outputTokens,
          costMicrocents: charge.costMicrocents,
          cumulativeCostMicrocents: charge.totals.costMicrocents,
          priced: charge.priced
        }
      ])
    /** What the workflow grants this agent: the tools it was given and the workflow's allowlists. */
    const grant: ToolPolicyCheck.Grant = { tools: toolNames, policy: plan.spec.tools }

    /** The tool calls of the last model call, while they are being settled. */
    let toolsOf: { readonly turn: number; readonly calls: ReadonlyArray<ModelCall.StreamedToolCall> } | undefined
    let answer: string | undefined
    let nextTurn = last === undefined ? 0 : last.turn + 1
    const assistant: Array<Llm.ContentPart> = []
    const toolResults: Array<Llm.ContentPart> = []

    /** Reports a tool call and its outcome (agent:tool_call, agent:tool_result) and keeps both for the turn's checkpoint. */
    const settle = (call: ModelCall.StreamedToolCall, outcome: Effect.Effect<ToolOutcome>) =>
      Effect.gen(function* () {
        const args = ModelCall.parseArgs(call.argsJson)
        assistant.push({ type: "tool_call", id: call.id, name: call.name, args: args ?? {} })
        yield* context.emit([
          {
            type: "agent:tool_call",
            runId,
            timestamp: timestamp(),
            nodeId: node.id,
            model,
            toolId: call.id,
            toolName: call.name,
            toolInput: args ?? call.argsJson
          }
        ])
        const { code, ok, text } = yield* outcome
        yield* context.emit([
          {
            type: "agent:tool_result",
            runId,
            timestamp: timestamp(),
            nodeId: node.id,
            toolId: call.id,
            success: ok,
            outputSummary: text.length > 500 ? `${text.slice(0, 500)}…` : text,
            errorCode: code
          }
        ])
        toolResults.push({ type: "tool_result", id: call.id, name: call.name, result: text, isError: !ok })
      })

    return yield* AgentLoop.run({
      llm,
      // Tokens count from the node's last checkpoint, cost from the run's total (cost:updated reports it).
      metering: {
        pricing,
        provider,
        model,
        from: Effect.succeed({
          inputTokens: last?.inputTokens ?? 0,
          outputTokens: last?.outputTokens ?? 0,
          costMicrocents: context.state.costMicrocents
        })
      },
      // TURN_LIMIT tool continuations after the first call; tools asked for by the last call fail the node.
      turnLimit: { modelCalls: TURN_LIMIT + 1, runToolsOfLastCall: false },
      position: Effect.sync((): AgentLoop.Position<ModelCall.StreamedToolCall, string> =>
        answer !== undefined
          ? { _tag: "Answered", answer }
          : toolsOf !== undefined
            ? { _tag: "Tools", turn: toolsOf.turn, calls: toolsOf.calls }
            : { _tag: "CallModel", turn: nextTurn }
      ),
      prepareCall: (_turn, { price, totals }) =>
        Effect.gen(function* () {
          const spent = totals.costMicrocents
          // Budget: would this call, at its largest, take the run over its cap?
          if (budget !== undefined && Option.isSome(price)) {
            const worstCase = Math.round(((maxTokens ?? DEFAULT_MAX_TOKENS) * price.value.outputPerMTok) / 1_000_000)
            if (spent + worstCase > budget.max_cost_microcents) {
              if (budget.on_exceed === "fail") {
                return yield* RunError.nodeFailure(
                    "budget_exceeded",
                    `the next call to ${model} could cost up to ${Cost.formatUsd(worstCase)}; ${Cost.formatUsd(spent)} of the ${Cost.formatUsd(budget.max_cost_microcents)} budget is spent`
                  )
              }
              if (budget.on_exceed === "warn" && !budgetWarned) {
                budgetWarned = true
                yield* context.emit([
                  {
                    type: "budget:warning",
                    runId,
                    timestamp: timestamp(),
                    spentMicrocents: spent,
                    limitMicrocents: budget.max_cost_microcents,
                    thresholdPct: Math.min(100, Math.round((100 * (spent + worstCase)) / budget.max_cost_microcents))
                  }
                ])
              }
              if (budget.on_exceed === "pause_for_approval" && !context.state.budgetApproved) {
                const gateId = budgetGateId(runId, node.id)
                yield* context.emit([
                  {
                    type: "budget:paused",
                    runId,
                    timestamp: timestamp(),
                    nodeId: node.id,
                    spentMicrocents: spent,
                    limitMicrocents: budget.max_cost_microcents,
                    gateId
                  },
                  {
                    type: "human_gate:paused",
                    runId,
                    timestamp: timestamp(),
                    nodeId: node.id,
                    gateId,
                    gateType: "budget",
                    message: `Budget of ${Cost.formatUsd(budget.max_cost_microcents)} would be exceeded at '${node.id}' (${Cost.formatUsd(spent)} spent). Approve to continue.`
                  }
                ])
                return Either.left<NodeOutcome>(suspended)
              }
            }
          }

          const request: Llm.LlmRequest = {
            provider,
            model,
            system: system.length > 0 ? system : undefined,
            messages,
            tools: tools.length > 0 ? tools : undefined,
            responseFormat: outputSchema !== undefined ? { type: "json", schema: outputSchema } : undefined,
            temperature: node.temperature ?? agent.temperature,
            maxTokens,
            reasoningEffort: agent.reasoning_effort,
            fallbacks: agent.fallback_chain?.map((f) => ({ provider: f.provider, model: f.model, maxAttempts: f.max_attempts }))
          }
          return Either.right<AgentLoop.PreparedCall<RunError.NodeFailure, never>>({
            request,
            persist: (batch) =>
              context.emit(
                batch.items.map((item): RE.RunEventDraft =>
                  item.type === "attempt"
                    ? {
                        type: "agent:attempt",
                        runId,
                        timestamp: timestamp(),
                        nodeId: node.id,
                        provider: item.provider,
                        model: item.model,
                        attemptNumber: item.attemptNumber,
                        reason: item.reason,
                        delayMs: item.delayMs
                      }
                    : item.kind === "text"
                      ? { type: "agent:token", runId, timestamp: timestamp(), nodeId: node.id, token: item.text, model }
                      : { type: "agent:reasoning", runId, timestamp: timestamp(), nodeId: node.id, text: item.text, model }
                )
              )
          })
        }),
      completeCall: (turn, result, charge) =>
        Effect.gen(function* () {
          if (result.failure !== undefined) {
            // A stream cut midway still consumed tokens: account for them before failing the node.
            yield* account(charge)
            return yield* ModelCall.llmFailure(result.failure)
          }
          if (result.stopReason === "content_filter") {
            return yield* RunError.nodeFailure("content_filter", `${provider}/${model} stopped: its content filter blocked the answer`)
          }
          yield* account(charge)
          if (result.toolCalls.length === 0) answer = result.text
          else {
            toolsOf = { turn, calls: result.toolCalls }
            assistant.length = 0
            toolResults.length = 0
            if (result.text.length > 0) assistant.push({ type: "text", text: result.text })
          }
          return Option.none<NodeOutcome>()
        }),
      // The workflow's grant decides first; a call it refuses is answered here, the daemon never sees it.
      approve: (call) =>
        Effect.sync(() => {
          const args = ModelCall.parseArgs(call.argsJson)
          // Arguments that are not JSON never reach a tool (runTool says so), unless the tool was not given at all.
          const refused = ToolPolicyCheck.denial(grant, call.name, args)
          return refused !== undefined && (args !== undefined || refused.code === "tool_unavailable")
            ? AgentLoop.refuse(refused)
            : AgentLoop.Run
        }),
      deny: (call, reason) =>
        settle(call, Effect.succeed(failedOutcome(reason ?? new ToolError({ code: "tool_denied", message: `${call.name} was denied` })))),
      runTool: (call) =>
        settle(
          call,
          Effect.suspend(() => {
            const args = ModelCall.parseArgs(call.argsJson)
            return args === undefined
              ? Effect.succeed({ ok: false, code: "tool_failed", text: `the arguments of ${call.name} are not valid JSON` })
              : Effect.flatMap(
                  // What the tool prints while it runs: tool:output events before its agent:tool_result.
                  makeOutputForwarder((chunk) =>
                    context.emit([
                      { type: "tool:output", runId, timestamp: timestamp(), nodeId: node.id, toolCallId: call.id, stream: chunk.stream, text: chunk.text }
                    ])
                  ),
                  (live) =>
                    router.execute({ runId, nodeId: node.id, callId: call.id, name: call.name, args, policy: plan.spec.tools }, { onOutput: live.onOutput }).pipe(
                      Effect.onExit((exit) => (Exit.isInterrupted(exit) ? Effect.void : live.flush)),
                      Effect.flatMap((r) =>
                        Effect.map(ModelCall.toolOutput(r.output), (text): ToolOutcome => ({ ok: !r.isError, code: r.isError ? "tool_failed" : undefined, text }))
                      ),
                      Effect.catchAll((e) => Effect.succeed(failedOutcome(e)))
                    )
                )
          }).pipe(
            Effect.tap((outcome) =>
              Effect.annotateCurrentSpan({ "relavium.tool_status": outcome.ok ? "ok" : "error", ...(outcome.code === undefined ? {} : { "error.type": outcome.code }) })
            ),
            // The tool's name and status only: its arguments and output may carry secrets.
            Effect.withSpan(SpanName.toolCall, {
              kind: "client",
              attributes: {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.id,
                "relavium.run_id": runId,
                "relavium.node_id": node.id
              }
            })
          )
        ),
      checkpoint: (turn, totals) =>
        Effect.gen(function* () {
          const added: Array<Llm.LlmMessage> = [
            { role: "assistant", content: [...assistant] },
            { role: "tool", content: [...toolResults] }
          ]
          messages.push(...added)
          toolsOf = undefined
          nextTurn = turn + 1
          yield* context.emit([
            {
              type: "agent:turn_completed",
              runId,
              timestamp: timestamp(),
              nodeId: node.id,
              turn,
              messages: added,
              inputTokens: totals.inputTokens,
              outputTokens: totals.outputTokens
            }
          ])
        }),
      answered: (text, totals) =>
        Effect.map(outputSchema !== undefined ? parseStructured(text, outputSchema) : Effect.succeed<unknown>(text), (output) =>
          completed(output, { tokensUsed: { input: totals.inputTokens, output: totals.outputTokens, model } })
        ),
      turnLimitReached: RunError.nodeFailure("turn_limit", `the agent still asked for tools after ${TURN_LIMIT} tool continuations`)
    })
  }).pipe(
    node_timeout(context.node.timeout_ms),
    // The node's logs (and a model provider that answers per node, as a scenario's script does) know which node calls.
    Effect.annotateLogs({ runId: context.runId, nodeId: context.node.id })
  )

const node_timeout =
  (timeoutMs: number | undefined) =>
  <A, R>(effect: Effect.Effect<A, RunError.NodeFailure, R>): Effect.Effect<A, RunError.NodeFailure, R> =>
    timeoutMs === undefined
      ? effect
      : effect.pipe(
          Effect.timeoutFail({
            duration: timeoutMs,
            onTimeout: () => RunError.nodeFailure("run_timeout", `the agent node took longer than its timeout_ms of ${timeoutMs} ms`)
          })
        )

