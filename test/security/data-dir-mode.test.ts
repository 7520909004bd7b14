/**
 * The data directory holds run data, chats, provider keys and tokens: every
 * composition creates it 0700 (owner only), and tightens one it finds with a
 * looser mode, whatever the umask.
 */
import { describe, expect, it } from "vitest"
import { chmodSync, mkdirSync, mkdtempSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { relavium } from "../../apps/cli/test/relavium.js"

const modeOf = (path: string) => statSync(path).mode & 0o777

describe("the data directory", () => {
  it("is created 0700 by the local commands (runs, chats), its parents too", () => {
    for (const args of [["runs", "list"], ["chat", "list"]]) {
      const dataDir = join(mkdtempSync(join(tmpdir(), "relavium-mode-")), "nested", "data")
      const result = relavium([...args, "--data-dir", dataDir])
      expect(result.status, result.stderr).toBe(0)
      expect(modeOf(dataDir).toString(8)).toBe("700")
      expect(modeOf(join(dataDir, "..")).toString(8)).toBe("700")
    }
  })

  it("is tightened to 0700 when it exists with a looser mode", () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), "relavium-mode-")), "data")
    mkdirSync(dataDir)
    chmodSync(dataDir, 0o755)
    const result = relavium(["runs", "list"], { env: { RELAVIUM_DATA_DIR: dataDir } })
    expect(result.status, result.stderr).toBe(0)
    expect(modeOf(dataDir).toString(8)).toBe("700")
  })
})
