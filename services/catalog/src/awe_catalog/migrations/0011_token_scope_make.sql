-- A third scope (issue 15): 'make', the credential a user delegates to the compute service
-- for a submission. It may read what its user may read, store files and register objects
-- (the routes marked MAKES in awecore.server.auth), and nothing else: no tokens, no
-- curation, no further submissions.
ALTER TABLE tokens DROP CONSTRAINT IF EXISTS tokens_scope;
ALTER TABLE tokens ADD CONSTRAINT tokens_scope CHECK (scope IN ('all', 'read', 'make'));
