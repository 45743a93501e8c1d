CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`key_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`name` text,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hash` ON `api_keys` (`key_hash`);--> statement-breakpoint
CREATE INDEX `api_keys_tenant` ON `api_keys` (`tenant_id`);--> statement-breakpoint
CREATE TABLE `images` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`object_key` text NOT NULL,
	`filename` text,
	`format` text NOT NULL,
	`width` integer NOT NULL,
	`height` integer NOT NULL,
	`orientation` integer DEFAULT 1 NOT NULL,
	`frames` integer DEFAULT 1 NOT NULL,
	`has_alpha` integer DEFAULT false NOT NULL,
	`bytes` integer NOT NULL,
	`sha256` text NOT NULL,
	`metadata` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `images_tenant_sha256` ON `images` (`tenant_id`,`sha256`);--> statement-breakpoint
CREATE INDEX `images_tenant_created` ON `images` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `images_tenant_filename` ON `images` (`tenant_id`,`filename`);--> statement-breakpoint
CREATE TABLE `tenants` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`signing_secret` text NOT NULL,
	`require_signed_urls` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL
);
