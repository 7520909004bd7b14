import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { deniedArguments, sedScriptDenial } from "../src/CommandDenyList.js"
import { exactLine, matchArguments, parse, tokenize } from "../src/CommandPattern.js"

const pattern = (source: string) => {
  const parsed = parse(source)
  if (Either.isLeft(parsed)) return assert.fail(`'${source}' was rejected: ${parsed.left}`)
  return parsed.right
}
const matches = (source: string, ...args: Array<string>) => matchArguments(pattern(source), args).matched
const rejection = (source: string, exact = false) => {
  const parsed = parse(source, { exact })
  if (Either.isRight(parsed)) return assert.fail(`'${source}' was accepted`)
  return parsed.left
}
const denial = (program: string, ...args: Array<string>) => deniedArguments(program, args)

describe("CommandPattern", () => {
  it("one argument per wildcard, '/' only where the pattern has one", () => {
    assert.isTrue(matches("cat *.txt", "notes.txt"))
    assert.isFalse(matches("cat *.txt", "/etc/passwd", "notes.txt"))
    assert.isFalse(matches("cat *.txt", "a b.txt", "c.txt"))
    assert.isTrue(matches("cat *.txt", "a b.txt"))
    assert.isFalse(matches("cat *.txt", "dir/notes.txt"))
    assert.isTrue(matches("ls src/*", "src/a.ts"))
    assert.isFalse(matches("ls src/*", "src/../../x"))
    assert.isFalse(matches("ls src/*", "src/.."))
    assert.isTrue(matches("cat ?.md", "a.md"))
    assert.isFalse(matches("cat ?.md", "ab.md"))
  })

  it("wildcards never match options, absolute paths, '..' segments or empty arguments", () => {
    for (const argument of ["-rf", "--output=x", "/etc/passwd", "..", "a/../b", ""]) {
      assert.isFalse(matches("tool *", argument), argument)
      assert.isFalse(matches("tool **", "ok", argument), argument)
    }
    assert.isTrue(matches("tool **"))
    assert.isTrue(matches("tool **", "a", "b/c", "d.e"))
    assert.isTrue(matches("git log --format=* **", "log", "--format=%H", "main"))
    assert.isFalse(matches("git log --format=* **", "log", "--format=a/b"))
  })

  it("literals and quotes are exact; exact lines compare argument vectors", () => {
    assert.isTrue(matches("git status", "status"))
    assert.isFalse(matches("git status", "status", "--porcelain"))
    assert.isTrue(matches("grep 'a b' *.txt", "a b", "x.txt"))
    assert.isTrue(matches("echo '*'", "*"))
    assert.isFalse(matches("echo '*'", "x"))
    const exact = parse("echo hi*", { exact: true })
    assert.isTrue(Either.isRight(exact) && matchArguments(exact.right, ["hi*"]).matched)
    assert.isTrue(Either.isRight(exact) && !matchArguments(exact.right, ["hi-there"]).matched)
    const vector = ["-e", "console.log('it''s \"x\"')", "a b"]
    const line = exactLine("node", vector)
    const tokens = tokenize(line)
    assert.deepStrictEqual(Either.isRight(tokens) ? tokens.right.map((t) => t.text) : [], ["node", ...vector])
  })

  it("rejects malformed patterns with a reason", () => {
    assert.match(rejection(""), /empty/)
    assert.match(rejection("cat 'a"), /quote at character 5 is not closed/)
    assert.match(rejection("c*t x"), /must be spelt exactly/)
    assert.match(rejection("ls ** x"), /last element/)
    assert.match(rejection("ls src/**"), /must stand alone/)
    assert.match(rejection(`cat ${"x".repeat(5000)}`), /at most 4096/)
    assert.match(rejection("cat 'a", true), /not closed/)
  })

  it("rejects patterns whose literal parts are on the deny-list", () => {
    assert.match(rejection("git -c *"), /'-c' can never run/)
    assert.match(rejection("git --git-dir=* status"), /--git-dir/)
    assert.match(rejection("git bisect **"), /git bisect is refused/)
    assert.match(rejection("git config core.pager less"), /may only read/)
    assert.match(rejection("python3 -c *"), /python -c/)
    assert.match(rejection("/usr/bin/env **"), /'env' runs another program/)
    assert.match(rejection("sed 1e *"), /'e' runs a program/)
    pattern("git config *")
    pattern("git config --get *")
    pattern("sed -n * *.txt")
  })
})

describe("CommandDenyList", () => {
  it("git: configuration, output files, helpers and shells", () => {
    assert.strictEqual(denial("git", "-c", "alias.x=!sh", "x")?.argument, "-c")
    assert.strictEqual(denial("git", "-calias.x=!sh", "x")?.index, 1)
    assert.strictEqual(denial("git", "diff", "--output=../x")?.index, 2)
    assert.strictEqual(denial("git", "fetch", "--upload-pack=sh")?.index, 2)
    assert.strictEqual(denial("git", "rebase", "-x", "id")?.argument, "-x")
    assert.strictEqual(denial("git", "rebase", "--exec=id")?.index, 2)
    assert.strictEqual(denial("git", "grep", "-Osh", "x")?.argument, "-Osh")
    assert.strictEqual(denial("git", "clone", "-u", "sh", "x")?.argument, "-u")
    assert.strictEqual(denial("git", "init", "--template=tpl")?.index, 2)
    assert.strictEqual(denial("git", "fetch", "ext::sh -c id")?.index, 2)
    assert.strictEqual(denial("/usr/bin/git", "config", "core.pager", "sh")?.argument, "config")
    assert.isUndefined(denial("git", "config", "user.name"))
    assert.isUndefined(denial("git", "status"))
    assert.isUndefined(denial("git", "diff", "--stat", "src/a.ts"))
    assert.isUndefined(denial("git", "-C", "sub", "log", "-c"))
  })

  it("find, tar, sort, shells and interpreters", () => {
    for (const action of ["-exec", "-execdir", "-ok", "-delete", "-fprint", "-fprintf", "-fls"]) {
      assert.strictEqual(denial("find", ".", "-name", "x", action)?.argument, action)
    }
    assert.isUndefined(denial("find", ".", "-name", "*.ts"))
    assert.strictEqual(denial("tar", "-xf", "a.tar", "--to-command=sh")?.index, 3)
    assert.strictEqual(denial("tar", "--checkpoint-action=exec=sh", "-cf", "a.tar", ".")?.index, 1)
    assert.strictEqual(denial("tar", "xIf", "sh", "a.tar")?.index, 1)
    assert.strictEqual(denial("tar", "-I", "sh", "-xf", "a.tar")?.index, 1)
    assert.isUndefined(denial("tar", "-tzf", "a.tgz"))
    assert.strictEqual(denial("sort", "-o", "x", "y")?.index, 1)
    assert.strictEqual(denial("sh", "-ec", "id")?.index, 1)
    assert.strictEqual(denial("bash", "-c", "id")?.index, 1)
    assert.strictEqual(denial("python3.11", "-Ic", "import os")?.index, 1)
    assert.strictEqual(denial("python3", "-cimport os")?.index, 1)
    assert.strictEqual(denial("node", "--eval=1")?.index, 1)
    assert.strictEqual(denial("node", "-pe", "1")?.index, 1)
    assert.strictEqual(denial("perl", "-esystem('id')")?.index, 1)
    assert.isUndefined(denial("python3", "script.py", "-c"))
    assert.isUndefined(denial("node", "build.js"))
    assert.strictEqual(denial("xargs", "rm")?.index, 0)
    assert.strictEqual(denial("/usr/bin/env", "sh")?.index, 0)
  })

  it("sed scripts: e, w, r commands and flags are refused, ordinary scripts pass", () => {
    for (const script of ["1e id", "e id", "s/a/b/e", "s|a|b|w out", "s/a/b/;w out", "{r /etc/passwd\n}", "0~4e id", "/x/I e id", "\\%x% w out", "s/a/b/3e"]) {
      assert.isDefined(sedScriptDenial(script), script)
    }
    for (const script of ["s/a/b/g", "1p", "/x/d", "s/a\\/b/c/", "y/abc/xyz/", "$!N;P;D", "1,3s/x/y/2", "/start/,/end/{s/a/b/;p}", "#n\n1p", "a\\\nappended e w"]) {
      assert.isUndefined(sedScriptDenial(script), script)
    }
    assert.strictEqual(denial("sed", "-n", "-e", "1p", "-e", "1e id", "x.txt")?.index, 5)
    assert.strictEqual(denial("sed", "--expression=1w out", "x.txt")?.index, 1)
    assert.strictEqual(denial("sed", "-i", "s/a/b/", "x.txt")?.index, 1)
    assert.strictEqual(denial("sed", "-ni", "s/a/b/", "x.txt")?.index, 1)
    assert.strictEqual(denial("sed", "-f", "script.sed", "x.txt")?.index, 1)
    assert.isUndefined(denial("sed", "-n", "s/a/b/p", "x.txt"))
  })

  it("awk programs that run commands or write files", () => {
    assert.isDefined(denial("awk", 'BEGIN{system("id")}'))
    assert.isDefined(denial("awk", "-F", ":", 'BEGIN{system("id")}', "x"))
    assert.isDefined(denial("gawk", "-v", "x=1", '{print | "sh"}'))
    assert.isDefined(denial("awk", '{print > "out"}'))
    assert.isDefined(denial("awk", "-f", "prog.awk"))
    assert.isUndefined(denial("awk", "-F:", "{print $1}", "x.txt"))
  })
})
