-- A job runs in a region, the name the API and the instances table use; `site` meant the same.
-- (The API still shows the field as `site`.)
ALTER TABLE jobs RENAME COLUMN site TO region;
