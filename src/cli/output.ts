/**
 * How a command speaks. Exit codes are a contract CI scripts rely on (docs/operations.md):
 * 0 ok, 1 differences found or a refusal, 2 usage (a bad flag or value), 3 cannot connect (or
 * DATABASE_URL is unusable), 130 interrupted.
 *
 * With `--json` the command's typed result is the only thing on stdout, as one JSON document;
 * the lines written for a person go to stderr instead, so a script can still show them.
 */
export const ExitCode = {
  ok: 0,
  differences: 1,
  usage: 2,
  cannotConnect: 3,
  interrupted: 130,
} as const;

let jsonMode = false;

export function setJsonMode(on: boolean): void {
  jsonMode = on;
}

export function isJsonMode(): boolean {
  return jsonMode;
}

/** A line for the operator: stdout normally, stderr under --json. */
export function say(...parts: unknown[]): void {
  if (jsonMode) console.error(...parts);
  else console.log(...parts);
}

/** The command's result under --json (ignored otherwise): one JSON document on stdout. */
export function emitJson(result: unknown): void {
  if (!jsonMode) return;
  process.stdout.write(`${JSON.stringify(result, jsonValue, 2)}\n`);
}

/** Dates as ISO strings, bigints as strings, Maps as objects, Errors as their message. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/** What a command's action returns: its exit code and, for --json, its typed result. */
export interface CommandOutcome {
  exitCode: number;
  result?: unknown;
}

export const outcome = (exitCode: number, result?: unknown): CommandOutcome => ({
  exitCode,
  result,
});
