CREATE TABLE `job_items` (
	`job_id` text NOT NULL,
	`position` integer NOT NULL,
	`image_id` text,
	`source_url` text,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`error` text,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`job_id`, `position`),
	FOREIGN KEY (`job_id`) REFERENCES `jobs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `job_items_state` ON `job_items` (`job_id`,`state`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`kind` text NOT NULL,
	`state` text NOT NULL,
	`variants` text NOT NULL,
	`total` integer NOT NULL,
	`origin` text NOT NULL,
	`callback_url` text,
	`callback_state` text DEFAULT 'none' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`finished_at` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `jobs_tenant_created` ON `jobs` (`tenant_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `variants` (
	`image_id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`params` text NOT NULL,
	`state` text NOT NULL,
	`format` text,
	`width` integer,
	`height` integer,
	`bytes` integer,
	`error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`image_id`, `name`),
	FOREIGN KEY (`image_id`) REFERENCES `images`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `variants_tenant` ON `variants` (`tenant_id`);--> statement-breakpoint
ALTER TABLE `tenants` ADD `webhook_secret` text;