import { describe, expect, it } from "@effect/vitest"
import { join } from "node:path"
import { DataDir, KeySecrets, KeyStores } from "@relavium/keys"

describe("KeySecrets.excludedPaths", () => {
  const dataDir = "/home/ada/.local/share/relavium"
  const worktrees = DataDir.worktreesDir(dataDir)
  const protectedPaths = [dataDir, KeyStores.keyFilePath(dataDir)]

  it("keeps the data directory and the key file out of a workspace that contains them (the home directory)", () => {
    expect(KeySecrets.excludedPaths(dataDir, "/home/ada")).toEqual(protectedPaths)
  })

  it("excludes nothing from a chat worktree: the rest of the data directory is outside it", () => {
    expect(worktrees).toBe(join(dataDir, "worktrees"))
    expect(KeySecrets.excludedPaths(dataDir, join(worktrees, "chat-1"))).toEqual([])
  })

  it("treats the worktrees directory itself, the data directory and look-alike names as ordinary workspaces", () => {
    for (const workspace of [worktrees, dataDir, `${worktrees}-evil/x`, join(worktrees, "..", "x")]) {
      expect(KeySecrets.excludedPaths(dataDir, workspace), workspace).toEqual(protectedPaths)
    }
  })
})
