import { describe, expect, it } from "@effect/vitest"
import { join } from "node:path"
import { KeySecrets } from "@relavium/keys"

describe("KeySecrets.excludedPathsFor", () => {
  const dataDir = "/home/ada/.local/share/relavium"
  const worktrees = join(dataDir, "worktrees")

  it("keeps the data directory and the key file out of a workspace that contains them (the home directory)", () => {
    expect(KeySecrets.excludedPathsFor(dataDir, "/home/ada", worktrees)).toEqual(KeySecrets.excludedPaths(dataDir))
    expect(KeySecrets.excludedPaths(dataDir)).toContain(dataDir)
  })

  it("excludes nothing from a chat worktree: the rest of the data directory is outside it", () => {
    expect(KeySecrets.excludedPathsFor(dataDir, join(worktrees, "chat-1"), worktrees)).toEqual([])
  })

  it("treats the worktrees directory itself, the data directory and look-alike names as ordinary workspaces", () => {
    for (const workspace of [worktrees, dataDir, `${worktrees}-evil/x`, join(worktrees, "..", "x")]) {
      expect(KeySecrets.excludedPathsFor(dataDir, workspace, worktrees), workspace).toEqual(KeySecrets.excludedPaths(dataDir))
    }
  })
})
