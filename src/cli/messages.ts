import { StandbyServerError } from '../connection/server-role';
import { InvalidSettingError } from '../settings';
import { ExitCode } from './output';
import { PreflightBackupError } from '../upgrade/preflight';

/**
 * One-line operator messages for failures the operator fixes (permissions, SSL, a backup
 * directory, a server that went away): what is wrong and what to do, never a stack trace.
 * The library throws typed errors or the driver's errors; the wording lives here.
 */

interface DriverFailure {
  code?: string;
  message?: string;
}

/** The PostgreSQL or Node error behind a TypeORM QueryFailedError, or the error itself. */
function driverFailure(error: unknown): DriverFailure {
  if (typeof error !== 'object' || error === null) return {};
  const driver = (error as { driverError?: unknown }).driverError;
  return (typeof driver === 'object' && driver !== null ? driver : error) as DriverFailure;
}

const SSL_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

/** Server gone: shut down, crashed, or the connection cut. */
const GONE_CODES = new Set(['57P01', '57P02', '57P03', 'ECONNRESET', 'EPIPE']);

function backupMessage(error: PreflightBackupError): string {
  switch (error.problem) {
    case 'backup-dir-not-writable':
      return (
        `Cannot write the backup in ${error.file} (${error.code ?? 'error'}): nothing was changed. ` +
        'Give a writable directory with --backup-dir.'
      );
    case 'backup-unreadable':
      return `Cannot read the backup file ${error.file} (${error.code ?? 'error'}). Check the path given to --restore.`;
    case 'invalid-backup':
      return (
        `${error.file} is not a backup written by preflight --fix (${error.message}). ` +
        'Nothing was restored.'
      );
    case 'row-exists':
      return (
        `Cannot restore ${error.file}: ${error.message.replace(/^line \d+: /, '')} ` +
        `(line ${error.line}; restored already, or the id was used again). Nothing was restored.`
      );
    case 'row-missing':
      return (
        `Cannot restore ${error.file}: ${error.message.replace(/^line \d+: /, '')} ` +
        `(line ${error.line}; deleted since the fix). Nothing was restored.`
      );
    case 'row-changed':
      return (
        `Cannot restore ${error.file}: ${error.message.replace(/^line \d+: /, '')} ` +
        `(line ${error.line}; changed since the fix). Nothing was restored. To write the ` +
        'backed-up value over it anyway, run again with --force-overwrite-changed.'
      );
    case 'old-backup':
      return (
        `${error.file} was written by a preflight --fix from before backups named their database ` +
        '(line 1 has no header), so it cannot be checked and is not restored. Nothing was ' +
        'restored. Put its rows back by hand: docs/operations.md, "preflight --fix and --restore".'
      );
    case 'bad-signature':
      return (
        `Refused to restore ${error.file}: ${error.message}. Nothing was restored. ` +
        'PIXCRAWLER_BACKUP_KEY must hold the key preflight --fix signed the backup with ' +
        '(unset it only for a backup written without one).'
      );
    case 'other-database':
      return (
        `Refused to restore ${error.file}: it is a backup of another database ` +
        `(${error.message}). Nothing was restored.`
      );
  }
}

export interface OperatorFailure {
  message: string;
  exitCode: number;
}

/**
 * The operator's message and exit code for an error, or undefined when it is a bug to report
 * with its stack.
 */
export function operatorFailure(error: unknown): OperatorFailure | undefined {
  if (error instanceof InvalidSettingError) {
    return {
      message: `${error.message}. Fix or unset ${error.setting}; nothing was started or changed.`,
      exitCode: ExitCode.usage,
    };
  }
  const message = operatorMessage(error);
  if (message === undefined) return undefined;
  const cannotConnect = message.startsWith('The SSL connection');
  return { message, exitCode: cannotConnect ? ExitCode.cannotConnect : ExitCode.differences };
}

function operatorMessage(error: unknown): string | undefined {
  if (error instanceof PreflightBackupError) return backupMessage(error);
  if (error instanceof StandbyServerError) {
    return (
      `Refused (${error.operation}): database "${error.database}" is on a standby, a read ` +
      'replica in recovery, which is read-only. Nothing was changed. Point DATABASE_URL at ' +
      'the primary and run it there; the replicas receive the change through replication. ' +
      '(verify, stats, status and preflight without --fix run on a standby.)'
    );
  }
  const failure = driverFailure(error);
  const message = failure.message ?? '';
  if (failure.code === '42501') {
    return (
      `The database refused: ${message}. Connect as the owner of the PixCrawler tables (or a ` +
      'role allowed to CREATE in the schema) by setting DATABASE_URL to that user. The ' +
      'statement that failed was rolled back; `pixcrawler-db status` shows what is applied.'
    );
  }
  if (
    SSL_CODES.has(failure.code ?? '') ||
    /does not support SSL|SSL|certificate|self[- ]signed/i.test(message)
  ) {
    return (
      `The SSL connection to the database failed: ${message}. Check sslmode in DATABASE_URL ` +
      '(sslmode=disable for a server without SSL; sslrootcert=<CA file> to verify the ' +
      "server's certificate) or the server's SSL set-up."
    );
  }
  if (GONE_CODES.has(failure.code ?? '') || /Connection terminated/i.test(message)) {
    return (
      `The connection to the database was lost mid-run (${failure.code ?? message}). The ` +
      'server rolled back the transaction in progress. Once the server is back, run ' +
      '`pixcrawler-db status` to see what was applied, then run the command again.'
    );
  }
  return undefined;
}
