import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { appDataSourceOptions } from './database';

/**
 * What `typeorm -d dist/data-source.js` and `pixcrawler-db -d dist/data-source.js` load. Their
 * file must export a DataSource, so this one reads DATABASE_URL when it is imported; the app and
 * its tests build theirs from appDataSourceOptions instead.
 */
export default new DataSource(appDataSourceOptions(process.env.DATABASE_URL));
