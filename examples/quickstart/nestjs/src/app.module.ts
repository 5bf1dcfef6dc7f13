import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LocalDirectoryStorage } from '@pixcrawler/data';
import { PixCrawlerDataModule } from '@pixcrawler/data/nestjs';
import { AppController } from './app.controller';
import { appDataSourceOptions } from './database';
import { Note } from './note.entity';

@Module({
  imports: [
    // The package's tables and the app's on one DataSource, read when the app starts.
    TypeOrmModule.forRootAsync({
      useFactory: () => appDataSourceOptions(process.env.DATABASE_URL),
    }),
    TypeOrmModule.forFeature([Note]),
    // The package's services on that DataSource, the job worker that runs exports, and the
    // domain errors as HTTP answers.
    PixCrawlerDataModule.forRootAsync({
      useFactory: () => ({
        exportJobs: {
          outputDir: process.env.EXPORT_DIR ?? 'exports',
          storage: new LocalDirectoryStorage(process.env.IMAGE_DIR ?? 'images'),
        },
        worker: { concurrency: 2 },
      }),
      registerFilter: true,
    }),
  ],
  controllers: [AppController],
})
export class AppModule {}
