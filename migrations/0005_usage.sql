CREATE TABLE `usage_daily` (
	`tenant_id` text NOT NULL,
	`day` text NOT NULL,
	`transforms_served` integer DEFAULT 0 NOT NULL,
	`transforms_rendered` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`tenant_id`, `day`)
);
