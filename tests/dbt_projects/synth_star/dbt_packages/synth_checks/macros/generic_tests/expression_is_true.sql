{#- Rows where the expression (on a column: `<column> <expression>`) does not hold. -#}
{% test expression_is_true(model, expression, column_name=none) %}
{%- set condition = expression if column_name is none else column_name ~ " " ~ expression %}
select *
from {{ model }}
where not ({{ condition }})
{% endtest %}
