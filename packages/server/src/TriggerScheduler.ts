/**
 * The scheduler of schedule triggers (docs/triggers.md): a fiber that reads every schedule of
 * every org (`Triggers.schedules`), computes their fire times with cron-parser in each one's
 * IANA time zone, and fires each one when its time comes.
 *
 * Every process that runs it (the monolith; each worker of the distributed deployment) fires the
 * same schedules; a fire runs once however many do, because firing records the fire first
 * (`recordDelivery`, delivery id = the fire's ISO time, unique per trigger) and only the process
 * whose insert wins starts the run, with a run id derived from (trigger, fire time). So replicas
 * never duplicate a fire, and a replica that dies between fires loses none while another runs.
 *
 * Missed fires (nothing was running at a fire's time) are handled when a scheduler starts, per
 * trigger (`missed`): `skip` (the default) fires nothing for them; `run_once` fires the newest
 * missed one, once. A schedule first seen after the scheduler started fires from its creation on.
 * Time comes from the Effect `Clock`, so tests move a `TestClock`.
 */
import { Clock, Duration, Effect, Either, Layer, Option } from "effect"
import { createHash } from "node:crypto"
import { WorkflowEngine } from "@relavium/core"
import { forOrg, type ScheduleEntry, Triggers } from "@relavium/ports"
import { firesBetween, latestFire } from "./TriggerInputs.js"

export interface SchedulerOptions {
  /** How often schedules are read and fire times checked (default 1 s: the finest cron field). */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/** The run a schedule's fire starts: the same id for the same (trigger, fire time), in a UUID's shape. */
export const fireRunId = (triggerId: string, fireIso: string): string => {
  const hex = createHash("sha256").update(`relavium schedule fire\u0000${triggerId}\u0000${fireIso}`).digest("hex")
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** Fires one schedule at `fireMs`, unless another process already did. */
export const fire = (entry: ScheduleEntry, fireMs: number) =>
  Effect.gen(function* () {
    const triggers = yield* Triggers
    const engine = yield* WorkflowEngine
    const deliveryId = new Date(fireMs).toISOString()
    const runId = fireRunId(entry.triggerId, deliveryId)
    const outcome = yield* triggers.recordDelivery({ triggerId: entry.triggerId, deliveryId, runId, limitPerMinute: Number.MAX_SAFE_INTEGER })
    if (outcome._tag !== "Accepted") return false
    const started = yield* Effect.either(
      engine.start(entry.workflowId, entry.inputs, { runId, trigger: { triggerId: entry.triggerId, kind: "schedule", deliveryId } })
    )
    if (Either.isLeft(started)) {
      yield* Effect.logError(`schedule ${entry.triggerId}: the run of ${deliveryId} could not start: ${started.left.message}`)
      // Forgotten, so the next scheduler to look (this one's next start, another replica) may fire it.
      yield* triggers.forgetDelivery(entry.triggerId, deliveryId)
      return false
    }
    return true
  }).pipe(
    // Recording a fire and starting its run are one step: a stopping process finishes it.
    Effect.uninterruptible,
    forOrg(entry.orgId),
    Effect.catchTag("TriggerError", (e) => Effect.as(Effect.logError(`schedule ${entry.triggerId}: ${e.message}`), false))
  )

const parseMs = (iso: string | undefined): number | undefined => {
  const ms = iso === undefined ? Number.NaN : Date.parse(iso)
  return Number.isNaN(ms) ? undefined : ms
}

const safely = <A>(f: () => A, fallback: A): A => {
  try {
    return f()
  } catch {
    return fallback
  }
}

/** How long after a whole interval the scheduler wakes (the clock's second has surely turned). */
const WAKE_OFFSET_MS = 50

/** The scheduler loop; runs until interrupted. */
export const run = (options: SchedulerOptions = {}) =>
  Effect.gen(function* () {
    const triggers = yield* Triggers
    const poll = Duration.decode(options.pollInterval ?? Duration.seconds(1))
    const startedAt = yield* Clock.currentTimeMillis
    /** Per trigger: fire times after this have not been looked at yet. */
    const cursors = new Map<string, number>()
    let first = true
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      const listed = yield* Effect.either(triggers.schedules)
      if (Either.isLeft(listed)) {
        yield* Effect.logError(`the scheduler could not read the schedules: ${listed.left.message}`)
      } else {
        const seen = new Set<string>()
        for (const entry of listed.right) {
          seen.add(entry.triggerId)
          let cursor = cursors.get(entry.triggerId)
          if (cursor === undefined) {
            const created = parseMs(entry.createdAt) ?? now
            if (first || created < startedAt) {
              // Present before this scheduler started: fires before now were missed (or fired by another replica).
              if (entry.missed === "run_once") {
                const since = Math.max(created, parseMs(entry.lastFire) ?? created)
                const missed = safely(() => latestFire(entry.cron, entry.timezone, since, now), Option.none())
                if (Option.isSome(missed)) yield* fire(entry, missed.value)
              }
              cursor = now
            } else cursor = created
          }
          for (const at of safely(() => firesBetween(entry.cron, entry.timezone, cursor!, now), [])) yield* fire(entry, at)
          cursors.set(entry.triggerId, now)
        }
        for (const id of [...cursors.keys()]) if (!seen.has(id)) cursors.delete(id)
        first = false
      }
      // Wake just after the next whole interval: a fire due at a whole second is started at once,
      // at the same moment on every replica, and a process is idle between fires.
      const after = yield* Clock.currentTimeMillis
      const step = Math.max(1, Duration.toMillis(poll))
      yield* Effect.sleep(Duration.millis(Math.floor(after / step) * step + step + WAKE_OFFSET_MS - after))
    }
  })

/** The scheduler as a layer: runs for as long as the layer lives. Needs `Triggers` and `WorkflowEngine`. */
export const layer = (options: SchedulerOptions = {}) =>
  Layer.scopedDiscard(Effect.forkScoped(Effect.interruptible(run(options))))
