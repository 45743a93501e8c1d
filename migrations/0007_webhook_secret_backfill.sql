-- Tenants created before `webhook_secret` existed (migration 0002) have none, so their webhooks
-- could never be signed. Give each its own random 32-byte secret, as lowercase hex like the
-- ones createTenant makes (randomblob is evaluated once per row).
UPDATE `tenants` SET `webhook_secret` = lower(hex(randomblob(32))) WHERE `webhook_secret` IS NULL OR `webhook_secret` = '';
