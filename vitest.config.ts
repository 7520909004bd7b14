import { availableParallelism } from "node:os"
import { relative } from "node:path"
import { defineConfig } from "vitest/config"
import { BaseSequencer, type TestSpecification } from "vitest/node"

/**
 * The files that take longest (child processes of the built CLI, servers, Postgres/Redis/NATS),
 * longest first. They start before everything else so that no long file is left to run alone at
 * the end: on a clean clone vitest has no timings of an earlier run and would order files by size.
 */
const slowestFirst = [
  "test/crash.test.ts",
  "test/distributed.e2e.test.ts",
  "test/distributed-orgs.e2e.test.ts",
  "test/chat-distributed.e2e.test.ts",
  "test/chat-parity.e2e.test.ts",
  "test/triggers.e2e.test.ts",
  "test/telemetry-distributed.e2e.test.ts",
  "test/fork.e2e.test.ts",
  "test/live-output-distributed.e2e.test.ts",
  "test/security/cross-tenant.test.ts",
  "test/cloud.test.ts",
  "test/bench.test.ts",
  "apps/cli/test/cli.test.ts",
  "test/security/event-loop.test.ts",
  "packages/server/test/monolith.test.ts",
  "packages/server/test/chats.test.ts",
  "test/security/poison-run.test.ts",
  "apps/cli/test/remote.test.ts",
  "packages/queue/test/distributed.test.ts",
  "apps/cli/test/chat.test.ts",
  "test/agent-crash.test.ts"
]

class SlowestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const rank = (spec: TestSpecification) => {
      const at = slowestFirst.indexOf(relative(spec.project.config.root, spec.moduleId).replaceAll("\\", "/"))
      return at < 0 ? slowestFirst.length : at
    }
    // The rest keep vitest's own order (earlier failures and longer durations first, when known).
    const rest = await super.sort(files)
    return [...rest].sort((a, b) => rank(a) - rank(b))
  }
}

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // vitest's default is one fork fewer than the cores: a single fork on a 2-core machine, which
    // leaves a core idle while a test waits on its child processes. Never fewer than two.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    minWorkers: 1,
    sequence: { sequencer: SlowestFirst },
    globalSetup: ["apps/cli/test/build.ts"],
    reporters: ["default"]
  }
})
