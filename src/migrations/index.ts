import { LegacySchema1731542400000 } from './1731542400000-LegacySchema';
import { JobTablesAndConstraints1731542400001 } from './1731542400001-JobTablesAndConstraints';
import { IndexExistingTables1731542400002 } from './1731542400002-IndexExistingTables';
import { ValidateConstraints1731542400003 } from './1731542400003-ValidateConstraints';
import { PendingJobIndexes1731542400004 } from './1731542400004-PendingJobIndexes';
import type { PixCrawlerMigration } from './migration-traits';

export {
  migrationName,
  type MigrationObject,
  type MigrationTraits,
  type PixCrawlerMigration,
} from './migration-traits';

/** Every migration, oldest first. A new migration is added here as well as in this folder. */
export const migrations: Array<new () => PixCrawlerMigration> = [
  LegacySchema1731542400000,
  JobTablesAndConstraints1731542400001,
  IndexExistingTables1731542400002,
  ValidateConstraints1731542400003,
  PendingJobIndexes1731542400004,
];
