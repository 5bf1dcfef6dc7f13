import { StandbyServerError } from '../connection/server-role';
import { maskDatabaseUrl } from '../db/database-url';
import { OperatorError } from './session';

/**
 * What an operator reads when a command that changes the database (migrate, revert, plan,
 * preflight --fix) was pointed at a standby; any other error passes through unchanged.
 * Use as `.catch(refuseOnStandby('migrate', target.url))`.
 */
export function refuseOnStandby(command: string, url: string) {
  return (error: unknown): never => {
    if (!(error instanceof StandbyServerError)) throw error;
    throw new OperatorError(
      `\`pixcrawler-db ${command}\` refused: ${maskDatabaseUrl(url)} is a standby ` +
        '(a read replica in recovery), which is read-only. Nothing was changed.\n' +
        'Point DATABASE_URL at the primary and run it there; the replicas receive the change ' +
        'through replication. (`verify`, `stats` and `preflight` without --fix do run on a ' +
        'standby.)',
    );
  };
}
