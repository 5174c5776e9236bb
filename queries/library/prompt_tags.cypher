// The tags used in the corpus, with how many prompts carry each.
//
// @column tag  A prompt tag.
// @column prompts  Prompts carrying it.
MATCH (pr:Prompt)
UNWIND pr.tags AS tag
RETURN tag, count(*) AS prompts
ORDER BY prompts DESC, tag
