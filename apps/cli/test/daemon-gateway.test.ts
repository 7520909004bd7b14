/**
 * End to end, three processes on loopback: a real `relavium monolith` (HTTPS,
 * self-signed) and a real `relavium daemon start --gateway wss://…/rpc/daemon`
 * with its own workspace. A run started through the API has its agent's tool
 * call executed by the dialed-in daemon; a daemon with a wrong token is
 * refused and exits.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { collect, exited, type Monolith, startMonolith } from "../../../packages/server/test/support/monolith.js"
import { root } from "./relavium.js"

const bin = join(root, "apps/cli/bin/relavium.mjs")
const fixtures = join(root, "apps/cli/test/fixtures")
const workflowYaml = readFileSync(join(fixtures, "remote-writer.relavium.yaml"), "utf8")

const dirs: Array<string> = []
const freshDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

interface Running {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves when stdout matches (rejects when the process exits first or after 20 s). */
  readonly printed: (pattern: RegExp) => Promise<void>
  readonly exit: Promise<number | null>
}

/** `relavium ARGS` as a long-running child process. */
const start = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Running => {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", ...env } })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("utf8")))
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")))
  const exit = exited(child)
  const printed = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stdout)) resolve()
      }
      check()
      child.stdout!.on("data", check)
      void exit.then((code) => reject(new Error(`exited with ${code} before printing ${pattern}:\n${stdout}${stderr}`)))
      setTimeout(() => reject(new Error(`did not print ${pattern} in time:\n${stdout}${stderr}`)), 20_000).unref()
    })
  return { child, stdout: () => stdout, stderr: () => stderr, printed, exit }
}

const runThroughApi = async (m: Monolith) => {
  const uploaded = await m.api("POST", "/workflows", { yaml: workflowYaml, file: "remote-writer.relavium.yaml" })
  expect(uploaded.status, uploaded.text).toBe(201)
  const started = await m.api("POST", "/runs", { workflowId: uploaded.json.workflowId })
  expect(started.status, started.text).toBe(201)
  return collect(m.events(started.json.runId as string), () => false)
}

describe("relavium daemon start --gateway, against a relavium monolith", () => {
  let m: Monolith
  let dataDir: string
  let monolithWorkspace: string
  let gateway: string
  const daemons: Array<Running> = []

  beforeAll(async () => {
    dataDir = freshDir("relavium-gateway-data-")
    monolithWorkspace = freshDir("relavium-gateway-monolith-ws-")
    m = await startMonolith(dataDir, ["--workspace", monolithWorkspace, "--cassette", join(fixtures, "remote-writer.cassette.json")])
    gateway = `${m.url.replace(/^https:/, "wss:")}/rpc/daemon`
  }, 60_000)

  afterAll(async () => {
    for (const daemon of daemons) {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill("SIGKILL")
    }
    await m?.stop()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it("a daemon with a wrong token is refused (401) and exits 2 with one clear line", async () => {
    const wrong = "wrong-token-0123456789abcdef"
    const daemon = start(["daemon", "start", "--gateway", gateway, "--token", wrong, "--ca", join(dataDir, "monolith-cert.pem"), "--workspace", freshDir("relavium-gateway-ws-")])
    daemons.push(daemon)
    expect(await daemon.exit).toBe(2)
    expect(daemon.stderr().trim().split("\n")).toEqual([
      `relavium: the gateway at ${gateway} refused the daemon's token (401); pass the gateway's token (a monolith's is the contents of its monolith.token) with --token or RELAVIUM_TOKEN`
    ])
    expect(daemon.stdout() + daemon.stderr()).not.toContain(wrong)
    expect(m.output()).not.toContain("tools daemon 'default' connected")
  })

  it("a daemon that does not trust the monolith's certificate says so, with a hint, and keeps trying", async () => {
    const daemon = start(["daemon", "start", "--gateway", m.url, "--workspace", freshDir("relavium-gateway-ws-")], { RELAVIUM_TOKEN: m.token })
    daemons.push(daemon)
    await daemon.printed(/certificate.*; pass --ca with the monolith's monolith-cert\.pem; retrying until it answers/)
    expect(daemon.stdout()).toContain(`cannot reach the gateway at ${gateway}`)
    daemon.child.kill("SIGTERM")
    expect(await daemon.exit).toBe(0)
  })

  it("runs the agent's tool call in the dialed-in daemon's workspace; without it, in the monolith's own", async () => {
    const daemonWorkspace = freshDir("relavium-gateway-daemon-ws-")
    const daemon = start(
      ["daemon", "start", "--gateway", gateway, "--ca", join(dataDir, "monolith-cert.pem"), "--workspace", daemonWorkspace],
      { RELAVIUM_TOKEN: m.token }
    )
    daemons.push(daemon)
    await daemon.printed(/relavium daemon: connected to wss:\/\/127\.0\.0\.1:\d+\/rpc\/daemon as 'default'/)

    const events = await runThroughApi(m)
    expect(events.at(-1)!.data).toMatchObject({ type: "run:completed", outputs: { result: "I wrote hello.txt." } })
    const toolResult = events.find((e) => e.type === "agent:tool_result")!.data
    expect(toolResult).toMatchObject({ success: true, outputSummary: expect.stringContaining("hello.txt") })
    expect(readFileSync(join(daemonWorkspace, "hello.txt"), "utf8")).toBe("written by the agent")
    expect(existsSync(join(monolithWorkspace, "hello.txt"))).toBe(false)
    expect(m.output()).toContain("relavium monolith: tools daemon 'default' connected")

    // SIGTERM: a clean stop, and the monolith sees it go.
    daemon.child.kill("SIGTERM")
    expect(await daemon.exit).toBe(0)
    expect(daemon.stdout() + daemon.stderr()).not.toContain(m.token)
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 10_000
      const poll = () =>
        m.output().includes("tools daemon 'default' disconnected")
          ? resolve()
          : Date.now() > deadline
            ? reject(new Error(`the monolith did not see the daemon go:\n${m.output()}`))
            : setTimeout(poll, 25)
      poll()
    })

    // No daemon dialed in: the monolith's in-process daemon takes the call, in its own workspace.
    const local = await runThroughApi(m)
    expect(local.at(-1)!.data.type).toBe("run:completed")
    expect(readFileSync(join(monolithWorkspace, "hello.txt"), "utf8")).toBe("written by the agent")
  })
})
