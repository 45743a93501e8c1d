CREATE TABLE `rendition_days` (
	`image_id` text NOT NULL,
	`day` text NOT NULL,
	`rendition_id` text NOT NULL,
	PRIMARY KEY(`image_id`, `day`, `rendition_id`)
);
