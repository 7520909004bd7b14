/**
 * Argument forms that turn an allowed program into a shell (it would run any
 * command) or into a writer of arbitrary files. They are refused even when an
 * allowedCommandGlobs pattern matches, and a pattern that spells one literally
 * is rejected when the workflow is validated. The list is documented in
 * docs/security/commands.md; it is deliberately conservative (a refusal names
 * the argument, so the model or the author can choose another form).
 */

export interface ArgumentDenial {
  /** 0 for the program itself, n for the n-th argument. */
  readonly index: number
  readonly argument: string
  readonly why: string
}

/** The program's base name, the way the deny-list knows it (`/usr/bin/python3.11` → `python`). */
export const programKey = (program: string): string => {
  const base = program.slice(program.lastIndexOf("/") + 1).toLowerCase()
  const versioned = /^(python|pypy|perl|ruby|php|lua|node|nodejs|bash|pip)[0-9.]*$/.exec(base)
  return versioned !== null ? versioned[1]! : base
}

/** Programs whose job is to run another program named in their arguments. */
const RUNNERS = new Set([
  "env", "xargs", "nohup", "nice", "timeout", "sudo", "doas", "su", "runuser", "pkexec", "setsid", "stdbuf", "chroot",
  "ionice", "taskset", "chrt", "time", "watch", "strace", "ltrace", "unbuffer", "script", "flock", "parallel", "unshare",
  "nsenter", "firejail", "systemd-run", "busybox", "eval", "exec", "command", "builtin", "expect", "gdb", "xdg-open"
])

const SHELLS = new Set(["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "yash", "pwsh"])

/** Programs whose options end at the first operand (the script they run). */
const INTERPRETERS = new Set([...SHELLS, "python", "pypy", "node", "nodejs", "bun", "perl", "ruby", "php", "lua"])

export const deniedPatternProgram = (program: string): string | undefined => {
  const key = programKey(program)
  if (RUNNERS.has(key)) return `'${key}' runs another program given in its arguments; allow that program instead`
  return undefined
}

/** `-abc` short-option cluster containing one of `letters` (not a `--long` option). */
const shortCluster = (argument: string, letters: string) =>
  /^-[A-Za-z0-9]+$/.test(argument) && [...argument.slice(1)].some((letter) => letters.includes(letter))

/** A short option (or cluster) that includes one of `letters`, possibly with its value attached (`-cCODE`, `-pe`). */
const optionWith = (argument: string, letters: string) => new RegExp(`^-[A-Za-z0-9]*[${letters}]`).test(argument)

const longOption = (argument: string, ...names: ReadonlyArray<string>) =>
  names.some((name) => argument === name || argument.startsWith(`${name}=`))

/** Context-free forms: refused wherever they appear in the arguments of `program`. */
const tokenRule: Record<string, (argument: string) => string | undefined> = {
  git: (a) =>
    longOption(a, "--output", "--output-directory") ? "git would write its output to a file of the model's choosing"
    : a.startsWith("--git-dir=") || a.startsWith("--work-tree=") ? "it points git at a repository or work tree outside the workspace"
    : longOption(a, "--template") ? "a template directory can install hooks that git then runs"
    : longOption(a, "--upload-pack", "--receive-pack", "--exec", "--config-env", "--exec-path", "--open-files-in-pager", "--ext-diff", "--extcmd", "--tool")
      ? "it makes git run a program named in the arguments or configuration"
    : a.startsWith("ext::") || a.startsWith("fd::") ? "the ext:: and fd:: transports run commands"
    : undefined,
  find: (a) =>
    ["-exec", "-execdir", "-ok", "-okdir"].includes(a) ? "find would run a command for each file"
    : ["-delete", "-fprint", "-fprint0", "-fprintf", "-fls"].includes(a) ? "find would delete or write files"
    : undefined,
  sed: (a) =>
    longOption(a, "--in-place") || (shortCluster(a, "i") && !a.startsWith("--")) ? "sed would edit files in place (use edit_file)"
    : longOption(a, "--file") || a === "-f" ? "a sed script from a file cannot be checked"
    : undefined,
  awk: (a) => (longOption(a, "--file", "--exec", "--include", "--load", "--source") || ["-f", "-E", "-i", "-l"].includes(a) ? "an awk program from a file or extension cannot be checked" : undefined),
  tar: (a) =>
    longOption(a, "--to-command", "--checkpoint-action", "--use-compress-program", "--rsh-command", "--rmt-command", "--info-script", "--new-volume-script") ||
    (a.startsWith("-") && !a.startsWith("--") && /[IF]/.test(a))
      ? "it makes tar run a program"
      : undefined,
  zip: (a) => (longOption(a, "--unzip-command") || a === "-TT" ? "it makes zip run a program" : undefined),
  rsync: (a) => (longOption(a, "--rsh", "--rsync-path") || a === "-e" ? "it makes rsync run a program" : undefined),
  ssh: (a) => (a.startsWith("-o") || a.startsWith("-F") ? "ssh options can run local commands (ProxyCommand, LocalCommand)" : undefined),
  scp: (a) => (a.startsWith("-o") || a.startsWith("-F") || a.startsWith("-S") ? "scp options can run local commands" : undefined),
  sort: (a) => (longOption(a, "--output", "--compress-program") || shortCluster(a, "o") ? "sort would write a file or run a program" : undefined),
  curl: (a) =>
    longOption(a, "--output", "--remote-name", "--remote-name-all", "--config", "--upload-file", "--output-dir", "--dump-header", "--trace", "--trace-ascii", "--cookie-jar") ||
    ["-o", "-O", "-K", "-T", "-D", "-c"].includes(a)
      ? "curl would write or upload a file"
      : undefined,
  wget: (a) =>
    longOption(a, "--output-document", "--output-file", "--append-output", "--execute", "--directory-prefix", "--post-file", "--body-file") ||
    ["-O", "-o", "-a", "-e", "-P"].includes(a)
      ? "wget would write a file of the model's choosing or run wgetrc commands"
      : undefined,
  man: (a) => (longOption(a, "--pager", "--html") || ["-P", "-H"].includes(a) ? "it makes man run a program" : undefined),
  python: (a) => (optionWith(a, "c") ? "python -c runs code given in the arguments" : undefined),
  pypy: (a) => (optionWith(a, "c") ? "pypy -c runs code given in the arguments" : undefined),
  node: (a) => (longOption(a, "--eval", "--print") || optionWith(a, "ep") ? "node would run code given in the arguments" : undefined),
  nodejs: (a) => (longOption(a, "--eval", "--print") || optionWith(a, "ep") ? "node would run code given in the arguments" : undefined),
  deno: (a) => (a === "eval" ? "deno eval runs code given in the arguments" : undefined),
  bun: (a) => (longOption(a, "--eval", "--print") || ["-e", "-p"].includes(a) ? "bun would run code given in the arguments" : undefined),
  perl: (a) => (optionWith(a, "eE") ? "perl -e runs code given in the arguments" : undefined),
  ruby: (a) => (optionWith(a, "e") ? "ruby -e runs code given in the arguments" : undefined),
  php: (a) => (optionWith(a, "rBRE") ? "php -r runs code given in the arguments" : undefined),
  lua: (a) => (optionWith(a, "e") ? "lua -e runs code given in the arguments" : undefined)
}
for (const shell of SHELLS) {
  tokenRule[shell] = (a) =>
    optionWith(a, "cs") || longOption(a, "--command", "--rcfile", "--init-file") ? `${shell} would run a command given in the arguments` : undefined
}
for (const alias of ["gawk", "mawk", "nawk", "busybox-awk"]) tokenRule[alias] = tokenRule.awk!

export const deniedPatternToken = (program: string, argument: string): string | undefined => {
  const rule = tokenRule[programKey(program)]
  return rule === undefined ? undefined : rule(argument)
}

// ---------------------------------------------------------------------------
// Forms that depend on position: git global options and subcommands, scripts
// ---------------------------------------------------------------------------

/** git options that take a value as the next argument, before the subcommand. */
const GIT_GLOBAL_WITH_VALUE = new Set(["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env", "--exec-path", "--list-cmds"])
const GIT_REFUSED_SUBCOMMANDS: Record<string, string> = {
  "filter-branch": "it runs shell snippets from its arguments",
  difftool: "it runs a diff program",
  mergetool: "it runs a merge program",
  submodule: "submodule foreach runs shell commands",
  bisect: "bisect run runs a command",
  daemon: "it starts a server",
  instaweb: "it starts a server and a browser",
  "upload-pack": "it is a transport helper",
  "receive-pack": "it is a transport helper",
  "upload-archive": "it is a transport helper",
  shell: "it is a restricted login shell",
  "credential": "it handles credentials",
  "send-email": "it sends mail and runs hooks"
}

/** `partial`: `args` is only the literal start of a pattern, so forms judged by what follows (git config) are not judged. */
const gitDenial = (args: ReadonlyArray<string>, partial = false): ArgumentDenial | undefined => {
  let index = 0
  for (; index < args.length; index++) {
    const a = args[index]!
    if (!a.startsWith("-")) break
    if (a === "-c" || a.startsWith("-c") || longOption(a, "--config-env", "--exec-path", "--git-dir", "--work-tree")) {
      return { index: index + 1, argument: a, why: "git global configuration, git-dir and work-tree options can run any command or reach outside the workspace" }
    }
    if (GIT_GLOBAL_WITH_VALUE.has(a)) index++
  }
  const subcommand = args[index]
  if (subcommand === undefined) return undefined
  const refused = GIT_REFUSED_SUBCOMMANDS[subcommand]
  if (refused !== undefined) return { index: index + 1, argument: subcommand, why: `git ${subcommand} is refused: ${refused}` }
  const rest = args.slice(index + 1)
  const at = (offset: number) => index + 2 + offset
  if (subcommand === "config" && !partial) {
    const reads = rest.length > 0 && rest.every((a, i) => (i === 0 ? /^(--get|--get-all|--get-regexp|--list|-l|--show-origin)$/.test(a) : !a.startsWith("-")))
    if (!reads && !(rest.length === 1 && !rest[0]!.startsWith("-"))) {
      return { index: index + 1, argument: "config", why: "git config may only read values here (git config <name>, --get, --list); setting configuration can make git run any command" }
    }
  }
  for (let offset = 0; offset < rest.length; offset++) {
    const a = rest[offset]!
    if (subcommand === "rebase" && (a === "-x" || shortCluster(a, "x"))) return { index: at(offset), argument: a, why: "git rebase -x runs a shell command" }
    if (subcommand === "clone" && a === "-u") return { index: at(offset), argument: a, why: "git clone -u runs a program as upload-pack" }
    if (subcommand === "grep" && (a === "-O" || a.startsWith("-O"))) return { index: at(offset), argument: a, why: "git grep -O runs a pager program" }
    if (subcommand === "archive" && longOption(a, "--remote")) return { index: at(offset), argument: a, why: "git archive --remote runs a remote command" }
    if (["diff", "log", "show", "format-patch", "archive"].includes(subcommand) && a === "-o") {
      return { index: at(offset), argument: a, why: "git would write its output to a directory of the model's choosing" }
    }
  }
  return undefined
}

/**
 * A sed script refusing the commands that run programs or touch other files
 * (`e`, `w`, `W`, `r`, `R`, and the `e`/`w` flags of `s`). A script the parser
 * does not understand is refused as well.
 */
export const sedScriptDenial = (script: string): string | undefined => {
  let i = 0
  const skipTo = (stops: string) => {
    while (i < script.length && !stops.includes(script[i]!)) i++
  }
  const delimited = (delimiter: string) => {
    while (i < script.length && script[i] !== delimiter) {
      if (script[i] === "\\") i++
      if (script[i] === "\n" && delimiter !== "\n") return false
      i++
    }
    if (i >= script.length) return false
    i++
    return true
  }
  while (i < script.length) {
    const c = script[i]!
    if (/[\s;{}!]/.test(c)) {
      i++
      continue
    }
    if (c === "#") {
      skipTo("\n")
      continue
    }
    // Addresses: line numbers, $, /regex/, \cREGEXc, ranges and steps.
    if (/[0-9$,~+]/.test(c)) {
      i++
      continue
    }
    if (c === "/" || c === "\\") {
      const delimiter = c === "/" ? "/" : script[i + 1]
      i += c === "/" ? 1 : 2
      if (delimiter === undefined || !delimited(delimiter)) return "the sed script has an unterminated address"
      if (script[i] === "I" || script[i] === "M") i++
      continue
    }
    i++
    if (c === "e" || c === "w" || c === "W" || c === "r" || c === "R") return `the sed command '${c}' runs a program or reads or writes another file`
    if (c === "s" || c === "y") {
      const delimiter = script[i]
      if (delimiter === undefined || delimiter === "\n" || delimiter === "\\") return "the sed script has a malformed s or y command"
      i++
      if (!delimited(delimiter) || !delimited(delimiter)) return "the sed script has an unterminated s or y command"
      if (c === "s") {
        const start = i
        skipTo(";\n}")
        const flags = script.slice(start, i)
        if (/[ew]/.test(flags)) return "the sed s///e and s///w flags run a program or write a file"
      }
      continue
    }
    if (c === "a" || c === "i" || c === "c") {
      skipTo("\n")
      continue
    }
    if (c === ":" || c === "b" || c === "t" || c === "T" || c === "q" || c === "Q" || c === "l" || c === "L") {
      skipTo(";\n}")
      continue
    }
    if (/[=dDgGhHnNpPxzF]/.test(c)) continue
    return `the sed command '${c}' is not understood here, so the script cannot be checked`
  }
  return undefined
}

/** The script texts of a sed or awk call: each -e value, or else the first operand (skipping options that take a value). */
const scriptArguments = (
  args: ReadonlyArray<string>,
  expressionFlags: ReadonlyArray<string>,
  longExpression: string,
  valueFlags: ReadonlyArray<string>
) => {
  const scripts: Array<{ index: number; text: string }> = []
  let sawExpression = false
  let firstOperand: { index: number; text: string } | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (expressionFlags.includes(a) && i + 1 < args.length) {
      scripts.push({ index: i + 2, text: args[i + 1]! })
      sawExpression = true
      i++
    } else if (valueFlags.includes(a)) {
      i++
    } else if (a.startsWith(`${longExpression}=`)) {
      scripts.push({ index: i + 1, text: a.slice(longExpression.length + 1) })
      sawExpression = true
    } else if (a === "--") {
      if (firstOperand === undefined && i + 1 < args.length) firstOperand = { index: i + 2, text: args[i + 1]! }
      break
    } else if (!a.startsWith("-") && firstOperand === undefined) {
      firstOperand = { index: i + 1, text: a }
    }
  }
  if (!sawExpression && firstOperand !== undefined) scripts.push(firstOperand)
  return scripts
}

const AWK_DANGER = /system|\||>|getline|ENVIRON|PROCINFO/

/**
 * What a pattern's literal elements already give away: the forms of
 * `deniedArguments` for a pattern without wildcards, and for one with
 * wildcards the same for its literal start (for git, only the global options and
 * refused subcommands: `git config *` may still be a read).
 */
export const deniedPatternLiterals = (program: string, literalPrefix: ReadonlyArray<string>, complete: boolean): ArgumentDenial | undefined => {
  if (complete || programKey(program) !== "git") return deniedArguments(program, literalPrefix)
  return gitDenial(literalPrefix, true)
}

/**
 * The first argument form that makes `program` run other programs or write
 * files of the model's choosing, or undefined. `program` may be a path.
 */
export const deniedArguments = (program: string, args: ReadonlyArray<string>): ArgumentDenial | undefined => {
  const key = programKey(program)
  const programWhy = deniedPatternProgram(program)
  if (programWhy !== undefined) return { index: 0, argument: program, why: programWhy }
  const rule = tokenRule[key]
  if (rule !== undefined) {
    for (let i = 0; i < args.length; i++) {
      // An interpreter's own options end at its script: what follows belongs to the script.
      if (INTERPRETERS.has(key) && !args[i]!.startsWith("-")) break
      const why = rule(args[i]!)
      if (why !== undefined) return { index: i + 1, argument: args[i]!, why }
    }
  }
  if (key === "git") return gitDenial(args)
  if (key === "tar" && args[0] !== undefined && !args[0].startsWith("-") && /[IF]/.test(args[0])) {
    return { index: 1, argument: args[0], why: "tar's old-style I and F options run a program" }
  }
  if (key === "sed") {
    for (const script of scriptArguments(args, ["-e"], "--expression", ["-l", "--line-length"])) {
      const why = sedScriptDenial(script.text)
      if (why !== undefined) return { index: script.index, argument: script.text, why }
    }
  }
  if (key === "awk" || key === "gawk" || key === "mawk" || key === "nawk") {
    for (const script of scriptArguments(args, ["-e", "--source"], "--source", ["-F", "-v", "--field-separator", "--assign"])) {
      if (AWK_DANGER.test(script.text)) {
        return { index: script.index, argument: script.text, why: "awk programs that run commands or write files (system, |, >, getline, ENVIRON) are refused" }
      }
    }
  }
  return undefined
}
