DROP TABLE IF EXISTS /* TEMPLATE: schema */effect_river_rate_limit;
