/**
 * The `RunQueue` contract, run against every layer of the tag (memory, BullMQ).
 * A `Namespace` is one test's private queue: each `instance` is a separate
 * consumer process's view of it (for BullMQ, its own connections and workers).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Schema, Scope, TestClock } from "effect"
import { type Job, Job as JobSchema, jobId, type Pool, type QueueError, RunQueue } from "../RunQueue.js"
import { currentOrgId, forOrg } from "../Tenancy.js"

export interface Namespace {
  readonly instance: (concurrency?: Readonly<Record<Pool, number>>) => Layer.Layer<RunQueue, QueueError>
}

export interface Capabilities {
  /** Several instances share one queue (separate processes), so a dead consumer's job is taken over. */
  readonly distributed: boolean
  /** Delays are slept on Effect's `Clock`, so `TestClock` moves them (an in-process queue; Redis keeps its own time). */
  readonly delaysOnClock: boolean
}

/**
 * Polls every 10 ms of real time (also under `TestClock`, whose time it leaves alone): waiting on
 * work that happens outside the fiber (Redis, worker fibers), not on the behaviour under test.
 */
export const eventually = (what: string, condition: () => boolean, timeoutMs = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      yield* realPause
    }
  })

/** 10 ms on the wall clock, whatever `Clock` the fiber has. */
const realPause = Effect.async<void>((resume) => {
  const timer = setTimeout(() => resume(Effect.void), 10)
  return Effect.sync(() => clearTimeout(timer))
})

/** Lets every fiber that can run, run (20 ms of real time), without moving any `Clock`. */
const settle = Effect.forEach(Array.from({ length: 2 }), () => realPause, { discard: true })

const counts = () => {
  const seen = new Map<string, number>()
  return {
    seen,
    record: (job: Job) => seen.set(jobId(job), (seen.get(jobId(job)) ?? 0) + 1),
    total: () => [...seen.values()].reduce((a, b) => a + b, 0)
  }
}

const all = { orchestrator: 4, node: 16, system: 2 }

/** Builds `layer` in a scope of its own, returning the scope to close it like a process exit. */
const start = (layer: Layer.Layer<RunQueue, QueueError>, handler: (job: Job) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(layer, scope)
    const queue = context.unsafeMap.get(RunQueue.key) as RunQueue["Type"]
    yield* queue.consume(handler).pipe(Scope.extend(scope))
    return { queue, scope }
  })

export const runQueueContract = (name: string, namespace: () => Namespace, capabilities: Capabilities) =>
  describe(`RunQueue contract: ${name}`, () => {
    it.live("handles every offered job once", () =>
      Effect.gen(function* () {
        const { record, seen, total } = counts()
        const { queue, scope } = yield* start(namespace().instance(all), (job) => Effect.sync(() => record(job)))
        const jobs: Array<Job> = []
        for (let i = 0; i < 60; i++) jobs.push({ _tag: "ExecuteNode", runId: `r${i % 7}`, nodeId: `n${i}`, attempt: 1 })
        for (let i = 0; i < 20; i++) jobs.push({ _tag: "Advance", runId: `run-${i}` })
        for (let i = 0; i < 10; i++) jobs.push({ _tag: "GateTimeout", runId: `run-${i}`, gateId: `g${i}` })
        for (let i = 0; i < 10; i++) jobs.push({ _tag: "RunDeadline", runId: `run-${i}` })
        yield* queue.offer(jobs.slice(0, 50))
        yield* Effect.forEach(jobs.slice(50), (job) => queue.offer([job]), { concurrency: 8, discard: true })
        yield* eventually("every job", () => total() >= jobs.length)
        yield* Effect.sleep("200 millis")
        assert.strictEqual(total(), jobs.length)
        assert.strictEqual(seen.size, jobs.length)
        yield* Scope.close(scope, Exit.void)
      }))

    it.live("runs each job for the org that offered it (a job naming none, as older payloads, for local)", () =>
      Effect.gen(function* () {
        const handled: Array<Array<string | undefined>> = []
        const { queue, scope } = yield* start(namespace().instance(all), (job) =>
          Effect.map(currentOrgId, (org) => void handled.push(["runId" in job ? job.runId : job.chatId, org, job.orgId]))
        )
        yield* forOrg("org-a")(queue.offer([{ _tag: "Advance", runId: "run-of-a" }, { _tag: "RunDeadline", runId: "run-of-a" }]))
        yield* forOrg("org-b")(queue.offer([{ _tag: "ExecuteNode", runId: "run-of-b", nodeId: "n", attempt: 1 }]))
        yield* queue.offer([{ _tag: "Advance", runId: "run-of-nobody" }])
        yield* eventually("every job", () => handled.length >= 4)
        assert.deepStrictEqual(
          [...handled].sort(),
          [
            ["run-of-a", "org-a", "org-a"],
            ["run-of-a", "org-a", "org-a"],
            ["run-of-b", "org-b", "org-b"],
            ["run-of-nobody", "local", "local"]
          ].sort()
        )
        // A payload written before jobs carried an org decodes as `local`.
        assert.deepStrictEqual(yield* Schema.decodeUnknown(JobSchema)({ _tag: "Advance", runId: "old" }), { _tag: "Advance", runId: "old", orgId: "local" })
        yield* Scope.close(scope, Exit.void)
      }))

    it.live("keeps pools apart: a busy node pool does not hold up orchestrator or system jobs", () =>
      Effect.gen(function* () {
        const release = yield* Deferred.make<void>()
        const handled: Array<string> = []
        const { queue, scope } = yield* start(namespace().instance({ orchestrator: 1, node: 2, system: 1 }), (job) =>
          Effect.sync(() => handled.push(job._tag)).pipe(Effect.zipRight(job._tag === "ExecuteNode" ? Deferred.await(release) : Effect.void))
        )
        yield* queue.offer([
          { _tag: "ExecuteNode", runId: "r", nodeId: "a", attempt: 1 },
          { _tag: "ExecuteNode", runId: "r", nodeId: "b", attempt: 1 },
          { _tag: "ExecuteNode", runId: "r", nodeId: "c", attempt: 1 }
        ])
        yield* eventually("both node workers busy", () => handled.filter((t) => t === "ExecuteNode").length === 2)
        yield* queue.offer([{ _tag: "Advance", runId: "r" }, { _tag: "GateTimeout", runId: "r", gateId: "g" }])
        yield* eventually("orchestrator and system jobs", () => handled.includes("Advance") && handled.includes("GateTimeout"))
        assert.strictEqual(handled.filter((t) => t === "ExecuteNode").length, 2)
        yield* Deferred.succeed(release, undefined)
        yield* eventually("the third node job", () => handled.filter((t) => t === "ExecuteNode").length === 3)
        yield* Scope.close(scope, Exit.void)
      }))

    if (capabilities.delaysOnClock) {
      it.effect("honours delays: a delayed job is handled when its delay has passed on the clock, not before", () =>
        Effect.gen(function* () {
          const handled: Array<string> = []
          const { queue, scope } = yield* start(namespace().instance(all), (job) => Effect.sync(() => handled.push(jobId(job))))
          yield* queue.offer([{ _tag: "RunDeadline", runId: "late" }], { delayMs: 600 })
          yield* queue.offer([{ _tag: "GateTimeout", runId: "late", gateId: "g" }], { delayMs: 300 })
          yield* queue.offer([{ _tag: "Advance", runId: "now" }])
          yield* eventually("the job offered without a delay", () => handled.length === 1)
          yield* TestClock.adjust("299 millis")
          yield* settle
          assert.deepStrictEqual(handled, ["advance:now"])
          yield* TestClock.adjust("1 millis")
          yield* eventually("the job delayed 300 ms", () => handled.length === 2)
          yield* TestClock.adjust("299 millis")
          yield* settle
          assert.deepStrictEqual(handled, ["advance:now", "gate-timeout:late:g"])
          yield* TestClock.adjust("1 millis")
          yield* eventually("the job delayed 600 ms", () => handled.length === 3)
          assert.deepStrictEqual(handled, ["advance:now", "gate-timeout:late:g", "deadline:late"])
          yield* Scope.close(scope, Exit.void)
        }))
    } else {
      it.live("honours delays", () =>
        Effect.gen(function* () {
          const at = new Map<string, number>()
          const { queue, scope } = yield* start(namespace().instance(all), (job) => Effect.sync(() => at.set(jobId(job), Date.now())))
          const offered = Date.now()
          yield* queue.offer([{ _tag: "RunDeadline", runId: "late" }], { delayMs: 600 })
          yield* queue.offer([{ _tag: "GateTimeout", runId: "late", gateId: "g" }], { delayMs: 300 })
          yield* queue.offer([{ _tag: "Advance", runId: "now" }])
          yield* eventually("the delayed jobs", () => at.size === 3, 5_000)
          assert.isBelow(at.get("advance:now")! - offered, 300)
          assert.isAtLeast(at.get("gate-timeout:late:g")! - offered, 290)
          assert.isAtLeast(at.get("deadline:late")! - offered, 590)
          assert.isBelow(at.get("deadline:late")! - offered, 3_000)
          yield* Scope.close(scope, Exit.void)
        }))
    }

    it.live("a job offered again while it runs never runs beside itself: it runs once more, after, however often it was offered", () =>
      Effect.gen(function* () {
        const release = yield* Deferred.make<void>()
        let active = 0
        let peak = 0
        let runs = 0
        const job: Job = { _tag: "ExecuteNode", runId: "again", nodeId: "n", attempt: 1 }
        const { queue, scope } = yield* start(namespace().instance(all), () =>
          Effect.gen(function* () {
            active++
            peak = Math.max(peak, active)
            runs++
            if (runs === 1) yield* Deferred.await(release)
            active--
          })
        )
        yield* queue.offer([job])
        yield* eventually("the job to run", () => runs === 1)
        // While it runs: offered again (as a sweep or a second process would), three times.
        yield* queue.offer([job])
        yield* queue.offer([job])
        yield* queue.offer([job])
        yield* Effect.sleep("300 millis")
        assert.strictEqual(runs, 1, "an offer while the job runs does not start it beside itself")
        yield* Deferred.succeed(release, undefined)
        yield* eventually("the run held until the first ended", () => runs === 2 && active === 0)
        yield* Effect.sleep("300 millis")
        assert.strictEqual(runs, 2)
        assert.strictEqual(peak, 1)
        yield* Scope.close(scope, Exit.void)
      }))

    it.live("an offer while a job of that id is delayed is dropped: the job runs once, after its delay", () =>
      Effect.gen(function* () {
        const handled: Array<string> = []
        const { queue, scope } = yield* start(namespace().instance(all), (job) => Effect.sync(() => handled.push(jobId(job))))
        const job: Job = { _tag: "GateTimeout", runId: "delayed", gateId: "g" }
        yield* queue.offer([job], { delayMs: 300 })
        yield* queue.offer([job])
        yield* queue.offer([job], { delayMs: 50 })
        yield* eventually("the delayed job", () => handled.length === 1, 5_000)
        yield* Effect.sleep("300 millis")
        assert.deepStrictEqual(handled, ["gate-timeout:delayed:g"])
        yield* Scope.close(scope, Exit.void)
      }))

    it.live("an ExecuteNode offered again while it waits is handled once; once taken it may be offered again", () =>
      Effect.gen(function* () {
        const { record, seen } = counts()
        const ns = namespace()
        // Offer before anything consumes, through a separate instance (the api side).
        const job: Job = { _tag: "ExecuteNode", runId: "r", nodeId: "n", attempt: 1 }
        const producerScope = yield* Scope.make()
        const producer = (yield* Layer.buildWithScope(ns.instance(all), producerScope)).unsafeMap.get(RunQueue.key) as RunQueue["Type"]
        yield* producer.offer([job])
        yield* producer.offer([job, job])
        yield* producer.offer([{ ...job, attempt: 2 }])
        if (!capabilities.distributed) {
          // In-process queues are consumed where they are offered.
          yield* producer.consume((j) => Effect.sync(() => record(j))).pipe(Scope.extend(producerScope))
        }
        const worker = capabilities.distributed ? yield* start(ns.instance(all), (j) => Effect.sync(() => record(j))) : undefined
        yield* eventually("both attempts", () => seen.size === 2)
        yield* Effect.sleep("300 millis")
        assert.strictEqual(seen.get(jobId(job)), 1)
        assert.strictEqual(seen.get(jobId({ ...job, attempt: 2 })), 1)
        yield* producer.offer([job])
        yield* eventually("the job offered again after it was taken", () => seen.get(jobId(job)) === 2)
        if (worker) yield* Scope.close(worker.scope, Exit.void)
        yield* Scope.close(producerScope, Exit.void)
      }))

    it.live("an Advance offered while one of the same run is active is still handled", () =>
      Effect.gen(function* () {
        const release = yield* Deferred.make<void>()
        let started = 0
        let finished = 0
        const { queue, scope } = yield* start(namespace().instance(all), () =>
          Effect.gen(function* () {
            started++
            if (started === 1) yield* Deferred.await(release)
            finished++
          })
        )
        yield* queue.offer([{ _tag: "Advance", runId: "busy" }])
        yield* eventually("the first Advance to be active", () => started === 1)
        yield* queue.offer([{ _tag: "Advance", runId: "busy" }])
        yield* Effect.sleep("100 millis")
        yield* Deferred.succeed(release, undefined)
        yield* eventually("the second Advance", () => finished === 2)
        yield* Scope.close(scope, Exit.void)
      }))

    it.live("respects each pool's concurrency", () =>
      Effect.gen(function* () {
        const running: Record<string, number> = { ExecuteNode: 0, Advance: 0 }
        const peak: Record<string, number> = { ExecuteNode: 0, Advance: 0 }
        let done = 0
        const { queue, scope } = yield* start(namespace().instance({ orchestrator: 2, node: 3, system: 1 }), (job) =>
          Effect.gen(function* () {
            running[job._tag] = (running[job._tag] ?? 0) + 1
            peak[job._tag] = Math.max(peak[job._tag] ?? 0, running[job._tag]!)
            yield* Effect.sleep("40 millis")
            running[job._tag]!--
            done++
          })
        )
        const jobs: Array<Job> = []
        for (let i = 0; i < 12; i++) jobs.push({ _tag: "ExecuteNode", runId: "c", nodeId: `n${i}`, attempt: 1 })
        for (let i = 0; i < 8; i++) jobs.push({ _tag: "Advance", runId: `c${i}` })
        yield* queue.offer(jobs)
        yield* eventually("every job", () => done === jobs.length)
        assert.strictEqual(peak.ExecuteNode, 3)
        assert.strictEqual(peak.Advance, 2)
        yield* Scope.close(scope, Exit.void)
      }))

    if (capabilities.distributed) {
      it.live("a job whose worker dies is taken over by another worker", () =>
        Effect.gen(function* () {
          const ns = namespace()
          const takenBy: Array<string> = []
          // Worker A takes the job and never finishes it; its "process" then goes away.
          const a = yield* start(ns.instance(all), (job) =>
            Effect.sync(() => takenBy.push(`A:${jobId(job)}`)).pipe(Effect.zipRight(Effect.never))
          )
          yield* a.queue.offer([{ _tag: "ExecuteNode", runId: "dies", nodeId: "n", attempt: 1 }])
          yield* eventually("worker A to take the job", () => takenBy.length === 1)
          yield* Scope.close(a.scope, Exit.void)
          const b = yield* start(ns.instance(all), (job) => Effect.sync(() => takenBy.push(`B:${jobId(job)}`)))
          yield* eventually("worker B to take the job over", () => takenBy.length === 2, 15_000)
          assert.deepStrictEqual(takenBy, ["A:node:dies:n:1", "B:node:dies:n:1"])
          yield* Scope.close(b.scope, Exit.void)
        }), 30_000)
    }
  })
