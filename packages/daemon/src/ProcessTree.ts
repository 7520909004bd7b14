/**
 * Every process a tool command started, so that none outlives the call.
 *
 * A command runs as the leader of its own session and process group, and
 * every process it starts inherits an environment marker unique to the call.
 * A process that leaves the group with `setsid` keeps the marker (and, until
 * it is reparented, a parent we already know), so sweeping /proc by session,
 * process group, parent and marker finds it. While the command runs we sweep
 * every ~50 ms and remember what we found (with its start time, so a reused
 * pid is never mistaken for one of ours); when the call ends we stop and kill
 * everything we know of, re-sweeping until nothing of the call is left.
 *
 * Linux only: where /proc is missing, killing the process group is all we do.
 */
import * as Fs from "node:fs"

/** The environment variable that marks every process of one tool call. */
export const MARKER_VARIABLE = "RELAVIUM_TOOL_CALL"

export const SWEEP_INTERVAL_MS = 50

const procAvailable = (() => {
  try {
    return process.platform === "linux" && Fs.statSync("/proc/self/stat").isFile()
  } catch {
    return false
  }
})()

interface ProcStat {
  readonly state: string
  readonly ppid: number
  readonly pgrp: number
  readonly session: number
  readonly startTime: string
}

const readStat = (pid: number): ProcStat | undefined => {
  try {
    const text = Fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    // The command name (field 2) may contain spaces and parentheses; the fields after the last ')' are fixed.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return { state: fields[0]!, ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]), startTime: fields[19]! }
  } catch {
    return undefined
  }
}

const listPids = (): Array<number> => {
  try {
    return Fs.readdirSync("/proc")
      .filter((name) => /^[0-9]+$/.test(name))
      .map(Number)
  } catch {
    return []
  }
}

export interface ProcessTree {
  /** Looks for new processes of the call; cheap for processes already classified. */
  readonly sweep: () => void
  /** Stops and kills every process of the call (the group, the session, the marked and their descendants). */
  readonly killAll: () => void
  /** How many processes of the call have been seen (the leader included). */
  readonly size: () => number
}

const killGroup = (pid: number) => {
  try {
    process.kill(-pid, "SIGKILL")
  } catch {
    // ESRCH: the group is already gone.
  }
}

const signal = (pid: number, name: NodeJS.Signals) => {
  try {
    process.kill(pid, name)
  } catch {
    // Gone already, or not ours.
  }
}

/**
 * Every listed process's stat as first read, shared by all calls: reading
 * /proc/<pid>/stat is the costly part of a sweep, so each process is read once
 * and forgotten when it leaves the listing. (A pid can only come back as another
 * process after the pid space wraps, which does not happen between two sweeps.)
 */
const statCache = new Map<number, ProcStat>()

/** The processes listed now, each with its (cached) stat. */
const snapshot = (): Array<[number, ProcStat]> => {
  const listed = listPids()
  const present = new Set(listed)
  for (const pid of statCache.keys()) if (!present.has(pid)) statCache.delete(pid)
  const out: Array<[number, ProcStat]> = []
  for (const pid of listed) {
    let stat = statCache.get(pid)
    if (stat === undefined) {
      stat = readStat(pid)
      if (stat === undefined) continue
      statCache.set(pid, stat)
    }
    out.push([pid, stat])
  }
  return out
}

/** Tracks the processes of the call led by `leader`, whose children carry `marker` in their environment. */
export const track = (leader: number, marker: string): ProcessTree => {
  if (!procAvailable) return { sweep: () => {}, killAll: () => killGroup(leader), size: () => 1 }
  const needle = Buffer.from(`${MARKER_VARIABLE}=${marker}\0`)
  const self = process.pid
  /** pid → start time of the processes of this call. */
  const ours = new Map<number, string>()
  /** pid → start time of processes known not to be ours. */
  const foreign = new Map<number, string>()
  const leaderStat = readStat(leader)
  if (leaderStat !== undefined) ours.set(leader, leaderStat.startTime)
  // A descendant cannot have started before the leader: older processes are never candidates.
  const leaderStart = leaderStat !== undefined ? Number(leaderStat.startTime) : 0

  const marked = (pid: number) => {
    try {
      return Fs.readFileSync(`/proc/${pid}/environ`).includes(needle)
    } catch {
      return false
    }
  }

  const scan = () => {
    const pending: Array<[number, ProcStat]> = []
    for (const [pid, stat] of snapshot()) {
      if (pid === self || pid === 1) continue
      if (ours.get(pid) === stat.startTime || foreign.get(pid) === stat.startTime) continue
      if (Number(stat.startTime) < leaderStart) {
        foreign.set(pid, stat.startTime)
        continue
      }
      pending.push([pid, stat])
    }
    // Direct membership first, then descendants of members until nothing changes.
    let remaining: Array<[number, ProcStat]> = []
    for (const [pid, stat] of pending) {
      if (stat.session === leader || stat.pgrp === leader || marked(pid)) ours.set(pid, stat.startTime)
      else remaining.push([pid, stat])
    }
    let grew = true
    while (grew) {
      grew = false
      const next: Array<[number, ProcStat]> = []
      for (const [pid, stat] of remaining) {
        if (ours.has(stat.ppid)) {
          ours.set(pid, stat.startTime)
          grew = true
        } else {
          next.push([pid, stat])
        }
      }
      remaining = next
    }
    for (const [pid, stat] of remaining) foreign.set(pid, stat.startTime)
  }

  /** Members that still run (zombies are dead: only their parent's wait is missing). */
  const living = (): Array<number> => {
    const alive: Array<number> = []
    for (const [pid, startTime] of ours) {
      const stat = readStat(pid)
      if (stat === undefined || stat.startTime !== startTime) {
        ours.delete(pid)
        continue
      }
      if (stat.state !== "Z" && stat.state !== "X") alive.push(pid)
    }
    return alive
  }

  return {
    sweep: scan,
    size: () => ours.size,
    killAll: () => {
      killGroup(leader)
      // Stop before killing, so a process cannot fork between our sweep and its death; sweep again until
      // a round finds no member that was not already killed (SIGKILL cannot be caught, so those are done).
      const killed = new Set<number>()
      for (let round = 0; round < 20; round++) {
        scan()
        const victims = living().filter((pid) => !killed.has(pid))
        if (victims.length === 0) return
        for (const pid of victims) signal(pid, "SIGSTOP")
        for (const pid of victims) {
          signal(pid, "SIGKILL")
          killed.add(pid)
        }
      }
    }
  }
}
