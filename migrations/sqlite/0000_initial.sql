CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`user_id` text,
	`parent_id` text,
	`type` text NOT NULL,
	`name` text NOT NULL,
	`env` text NOT NULL,
	`status` text NOT NULL,
	`key_hash` text NOT NULL,
	`prev_key_hash` text,
	`prev_key_expires_at` integer,
	`models` text,
	`ip_allow` text NOT NULL,
	`referrer_allow` text NOT NULL,
	`expires_at` integer,
	`metadata` text NOT NULL,
	`created_by` text NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_key_hash_unique` ON `api_keys` (`key_hash`);--> statement-breakpoint
CREATE INDEX `api_keys_org_idx` ON `api_keys` (`org_id`);--> statement-breakpoint
CREATE INDEX `api_keys_user_idx` ON `api_keys` (`user_id`);--> statement-breakpoint
CREATE INDEX `api_keys_parent_idx` ON `api_keys` (`parent_id`);--> statement-breakpoint
CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`ts` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`target_type` text NOT NULL,
	`target_id` text NOT NULL,
	`details` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_log_ts_idx` ON `audit_log` (`ts`);--> statement-breakpoint
CREATE INDEX `audit_log_target_idx` ON `audit_log` (`target_type`,`target_id`);--> statement-breakpoint
CREATE TABLE `config_version` (
	`id` integer PRIMARY KEY DEFAULT 1 NOT NULL,
	`version` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `credit_ledger` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`scope_type` text NOT NULL,
	`scope_id` text NOT NULL,
	`amount_micros` integer NOT NULL,
	`kind` text NOT NULL,
	`reason` text,
	`actor` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `credit_ledger_scope_idx` ON `credit_ledger` (`scope_type`,`scope_id`);--> statement-breakpoint
CREATE TABLE `limit_resets` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`scope_type` text NOT NULL,
	`scope_id` text NOT NULL,
	`window` text NOT NULL,
	`reset_at` integer NOT NULL,
	`actor` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `limit_resets_scope_idx` ON `limit_resets` (`scope_type`,`scope_id`);--> statement-breakpoint
CREATE TABLE `limits` (
	`id` text PRIMARY KEY NOT NULL,
	`scope_type` text NOT NULL,
	`scope_id` text NOT NULL,
	`model` text NOT NULL,
	`metric` text NOT NULL,
	`window` text NOT NULL,
	`max` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `limits_unique_idx` ON `limits` (`scope_type`,`scope_id`,`model`,`metric`,`window`);--> statement-breakpoint
CREATE TABLE `models` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`context_length` integer,
	`prompt_price` integer NOT NULL,
	`completion_price` integer NOT NULL,
	`request_price` integer NOT NULL,
	`price_overridden` integer NOT NULL,
	`source` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `org_models` (
	`org_id` text NOT NULL,
	`pattern` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `pattern`),
	FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `orgs` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`provider` text NOT NULL,
	`base_url` text,
	`upstream_key_enc` text,
	`upstream_key_hint` text,
	`failure_mode` text NOT NULL,
	`unknown_model_policy` text NOT NULL,
	`default_max_tokens` integer,
	`http_referer` text,
	`app_title` text,
	`metadata` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `orgs_name_unique` ON `orgs` (`name`);--> statement-breakpoint
CREATE TABLE `usage_daily` (
	`day` text NOT NULL,
	`org_id` text NOT NULL,
	`key_id` text NOT NULL,
	`user_id` text NOT NULL,
	`model` text NOT NULL,
	`requests` integer NOT NULL,
	`errors` integer NOT NULL,
	`prompt_tokens` integer NOT NULL,
	`completion_tokens` integer NOT NULL,
	`total_tokens` integer NOT NULL,
	`cost_micros` integer NOT NULL,
	PRIMARY KEY(`day`, `org_id`, `key_id`, `user_id`, `model`)
);
--> statement-breakpoint
CREATE INDEX `usage_daily_org_day_idx` ON `usage_daily` (`org_id`,`day`);--> statement-breakpoint
CREATE INDEX `usage_daily_key_day_idx` ON `usage_daily` (`key_id`,`day`);--> statement-breakpoint
CREATE TABLE `usage_events` (
	`request_id` text PRIMARY KEY NOT NULL,
	`ts` integer NOT NULL,
	`org_id` text NOT NULL,
	`user_id` text,
	`key_id` text NOT NULL,
	`model` text NOT NULL,
	`provider` text NOT NULL,
	`prompt_tokens` integer NOT NULL,
	`completion_tokens` integer NOT NULL,
	`total_tokens` integer NOT NULL,
	`cost_micros` integer NOT NULL,
	`status` integer NOT NULL,
	`error_code` text,
	`latency_ms` integer NOT NULL,
	`ttfb_ms` integer,
	`stream` integer NOT NULL,
	`usage_source` text NOT NULL,
	`instance` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `usage_events_ts_idx` ON `usage_events` (`ts`);--> statement-breakpoint
CREATE INDEX `usage_events_key_ts_idx` ON `usage_events` (`key_id`,`ts`);--> statement-breakpoint
CREATE INDEX `usage_events_org_ts_idx` ON `usage_events` (`org_id`,`ts`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text,
	`username` text NOT NULL,
	`email` text,
	`status` text NOT NULL,
	`roles` text NOT NULL,
	`groups` text NOT NULL,
	`source` text NOT NULL,
	`external_id` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_username_unique` ON `users` (`username`);--> statement-breakpoint
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);--> statement-breakpoint
CREATE UNIQUE INDEX `users_external_id_unique` ON `users` (`external_id`);--> statement-breakpoint
CREATE INDEX `users_org_idx` ON `users` (`org_id`);