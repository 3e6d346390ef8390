-- Publishing notices (POST /v1/notices) is a right an operator grants, unless PUBLISH_OPEN_TO_ALL is set.
ALTER TABLE accounts ADD COLUMN can_publish boolean NOT NULL DEFAULT false;
