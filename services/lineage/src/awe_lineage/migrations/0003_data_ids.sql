-- Every node's data ID (the values of its class's dimensions: instrument, chip, filter,
-- night, raw frame, tile), recorded when the node is made, so lineage shows what each object
-- is for; and the name of named objects (instruments, chips, filters), which data IDs use.
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS object_name text;
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS data_id jsonb;
