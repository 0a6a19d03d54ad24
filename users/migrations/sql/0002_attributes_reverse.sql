DROP FUNCTION users_attributes_document(jsonb);
DROP FUNCTION users_timestamp_epoch(text);
DROP FUNCTION users_version_key(text);
