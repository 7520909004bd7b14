/**
 * Issue 14, finding 5: the data directory and the key file are out of the
 * file tools' reach even when the workspace is the home directory that holds
 * them, and a known key that reaches a tool output or a model answer anyway
 * (a user pasted it into a file) is scrubbed before the model, the events or
 * the store see it.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { KeyStore, type ToolError, type ToolResult } from "@relavium/ports"
import { DataDir, KeySecrets, KeyStores } from "../../packages/keys/src/index.js"
import { layerLocal } from "../../packages/daemon/src/index.js"
import { isToolError, run, startDaemon, tempDir } from "../../packages/daemon/test/support.js"
import { engineLayer, runToRest, scriptedModel, toolCall } from "../../packages/core/test/harness.js"
import { describeFindings, LeakScanner, textSecret } from "../support/leaks.js"

const KEY = "sk-ant-api03-TESTKEY-0123456789abcdefghijklmnop"

const expectDenied = (value: ToolResult | ToolError, message: RegExp = /excluded from file tools/) => {
  assert.isTrue(isToolError(value), `expected tool_denied, got ${JSON.stringify(value)}`)
  assert.strictEqual((value as ToolError).code, "tool_denied", (value as ToolError).message)
  assert.match((value as ToolError).message, message)
}

const output = (value: ToolResult | ToolError): string => {
  assert.isFalse(isToolError(value), isToolError(value) ? value.message : "")
  return (value as ToolResult).output
}

/** A fake home directory with Relavium's data directory in its usual place and a key stored by the real file store. */
const fakeHome = () =>
  Effect.gen(function* () {
    const home = tempDir("relavium-home-")
    const dataDir = DataDir.resolveDataDir({ homedir: home, env: {}, platform: "linux" })
    const keyStore = KeyStores.layerFile({ dataDir, environment: false }).pipe(Layer.provide(NodeContext.layer))
    yield* Effect.flatMap(KeyStore, (store) => store.set("anthropic", Redacted.make(KEY))).pipe(Effect.provide(keyStore))
    Fs.writeFileSync(Path.join(dataDir, "relavium.db"), "SQLite format 3\u0000 runs and chats")
    Fs.writeFileSync(Path.join(home, "notes.txt"), "my project notes\n")
    return { home, dataDir, keyFile: KeyStores.keyFilePath(dataDir), keyStore }
  })

describe("secrets out of reach", () => {
  it.scopedLive("with the workspace at a home that holds the data directory, file tools never reach it", () =>
    Effect.gen(function* () {
      const { home, dataDir, keyFile } = yield* fakeHome()
      assert.strictEqual(Path.relative(home, keyFile), ".local/share/relavium/keys.json")
      Fs.symlinkSync(keyFile, Path.join(home, "key-link"))
      Fs.symlinkSync(dataDir, Path.join(home, "data-link"))
      Fs.linkSync(keyFile, Path.join(home, "key-hardlink"))
      const daemon = yield* startDaemon({ workspace: home, excludedPaths: KeySecrets.excludedPaths(dataDir, home) })

      expectDenied(yield* run(daemon, "read_file", { path: ".local/share/relavium/keys.json" }))
      expectDenied(yield* run(daemon, "read_file", { path: keyFile }))
      expectDenied(yield* run(daemon, "read_file", { path: ".local/share/relavium/relavium.db" }))
      expectDenied(yield* run(daemon, "read_file", { path: "key-link" }))
      expectDenied(yield* run(daemon, "read_file", { path: "data-link/keys.json" }))
      expectDenied(yield* run(daemon, "read_file", { path: "key-hardlink" }), /hard link to a file excluded/)
      expectDenied(yield* run(daemon, "write_file", { path: ".local/share/relavium/keys.json", content: "{}" }))
      expectDenied(yield* run(daemon, "write_file", { path: ".local/share/relavium/new.txt", content: "x" }))
      expectDenied(yield* run(daemon, "edit_file", { path: "key-link", old_string: "sk-", new_string: "x" }))
      expectDenied(yield* run(daemon, "list_directory", { path: ".local/share/relavium" }))
      expectDenied(yield* run(daemon, "grep", { pattern: "sk-ant", path: ".local/share/relavium" }))

      // Walks skip it: the listing, the glob and the search do not show it or what it holds.
      const listing = output(yield* run(daemon, "list_directory", { path: ".", recursive: true }))
      assert.include(listing, "notes.txt")
      assert.include(listing, ".local/share/")
      assert.notInclude(listing, "relavium")
      assert.notInclude(listing, "keys.json")
      assert.strictEqual(output(yield* run(daemon, "glob", { pattern: "**/keys.json" })), "(no matches)")
      assert.notInclude(output(yield* run(daemon, "glob", { pattern: "**/*" })), ".local/share/relavium")
      assert.strictEqual(output(yield* run(daemon, "grep", { pattern: "sk-ant" })), "(no matches)")
      assert.strictEqual(output(yield* run(daemon, "grep", { pattern: "notes" })), "notes.txt:1: my project notes")
      assert.include(Fs.readFileSync(keyFile, "utf8"), KEY)
    }))

  it.scopedLive("git_commit in a home repository never stages the data directory", () =>
    Effect.gen(function* () {
      const { home, dataDir } = yield* fakeHome()
      const git = (...args: Array<string>) => ChildProcess.execFileSync("git", ["-C", home, ...args], { encoding: "utf8" })
      git("init", "-q")
      git("config", "user.email", "t@example.com")
      git("config", "user.name", "Test")
      const daemon = yield* startDaemon({ workspace: home, excludedPaths: KeySecrets.excludedPaths(dataDir, home) })

      output(yield* run(daemon, "git_commit", { message: "everything" }))
      const tracked = git("ls-files").split("\n").filter((line) => line !== "")
      assert.deepStrictEqual(tracked, ["notes.txt"])
      expectDenied(yield* run(daemon, "git_commit", { message: "the keys", files: [".local/share/relavium/keys.json"] }))
      Fs.writeFileSync(Path.join(home, "more.txt"), "more\n")
      output(yield* run(daemon, "git_commit", { message: "one file", files: ["more.txt"] }))
      assert.deepStrictEqual(git("ls-files").split("\n").filter((line) => line !== ""), ["more.txt", "notes.txt"])
    }))

  it.scopedLive("a known key in a tool output or a model answer is scrubbed before the model, the events and the store", () =>
    Effect.gen(function* () {
      const { home, dataDir, keyStore } = yield* fakeHome()
      // The user pasted the key into a project file, which file tools may read.
      Fs.writeFileSync(Path.join(home, "setup.md"), `export ANTHROPIC_API_KEY=${KEY}\n`)
      const half = Math.floor(KEY.length / 2)
      const model = scriptedModel([
        toolCall("c1", "read_file", { path: "setup.md" }),
        // The answer repeats the key, split across two chunks.
        [
          { type: "text_delta", text: `The key is ${KEY.slice(0, half)}` },
          { type: "text_delta", text: `${KEY.slice(half)} and it works.` },
          { type: "stop", stopReason: "stop", usage: { inputTokens: 10, outputTokens: 5 } }
        ]
      ])
      const secrets = KeySecrets.layer().pipe(Layer.provide(keyStore))
      const engine = engineLayer({
        model: model.layer,
        router: layerLocal({ workspace: home, excludedPaths: KeySecrets.excludedPaths(dataDir, home) })
      }).pipe(Layer.provideMerge(secrets))
      const workflow = `schema_version: '1.0'
workflow:
  id: scrub
  agents:
    - { id: helper, provider: anthropic, model: claude-sonnet-4, system_prompt: 'You help.', tools: [read_file] }
  nodes:
    - { id: work, type: agent, agent_ref: helper, prompt_template: 'Read setup.md.' }
    - { id: out, type: output }
  edges:
    - { from: work, to: out }
`
      const { events } = yield* runToRest(workflow).pipe(Effect.provide(engine))
      assert.strictEqual(events.at(-1)!.type, "run:completed")
      // Not raw, nor encoded (base64, hex, URL-encoded), anywhere in the events or the model's requests.
      const scanner = new LeakScanner([textSecret("anthropic key", KEY)])
      assert.strictEqual(describeFindings(scanner.value("events", "run events", events)), "no leaks")
      assert.strictEqual(describeFindings(scanner.value("events", "requests to the model", model.requests)), "no leaks")
      const toolResult = events.find((e) => e.type === "agent:tool_result")
      assert.strictEqual(toolResult?.type === "agent:tool_result" ? toolResult.outputSummary : "", "export ANTHROPIC_API_KEY=[redacted secret]\n")
      const tokens = events.flatMap((e) => (e.type === "agent:token" ? [e.token] : [])).join("")
      assert.strictEqual(tokens, "The key is [redacted secret] and it works.")
    }))
})
