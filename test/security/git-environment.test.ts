/**
 * Git, run for chat worktrees, gets only the environment it needs: provider
 * keys, bearer tokens, the master key and variables that would point git at
 * another repository stay behind. (packages/chat/test/Worktrees.test.ts shows
 * the same with the real git.)
 */
import { describe, expect, it } from "vitest"
import { gitEnvironment } from "../../packages/chat/src/Worktrees.js"

describe("the environment of git for chat worktrees", () => {
  it("keeps what git needs and drops secrets and redirections", () => {
    const env = gitEnvironment({
      PATH: "/usr/bin",
      HOME: "/home/me",
      LANG: "en_US.UTF-8",
      LC_ALL: "C",
      TMPDIR: "/tmp",
      GIT_AUTHOR_NAME: "Me",
      ANTHROPIC_API_KEY: "sk-ant-1",
      OPENAI_API_KEY: "sk-2",
      RELAVIUM_OPENAI_API_KEY: "sk-3",
      RELAVIUM_MASTER_KEY: "master",
      RELAVIUM_TOKEN: "token",
      RELAVIUM_DATABASE_URL: "postgres://u:secret@db/x",
      AWS_SECRET_ACCESS_KEY: "aws",
      GIT_DIR: "/elsewhere/.git",
      GIT_WORK_TREE: "/elsewhere",
      GIT_SSH_COMMAND: "sh -c 'evil'",
      GIT_TERMINAL_PROMPT: "1"
    })
    expect(env).toEqual({
      PATH: "/usr/bin",
      HOME: "/home/me",
      LANG: "en_US.UTF-8",
      LC_ALL: "C",
      TMPDIR: "/tmp",
      GIT_AUTHOR_NAME: "Me",
      GIT_TERMINAL_PROMPT: "0"
    })
  })
})
