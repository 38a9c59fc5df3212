-- One row per order, amounts still in the order's own currency (int_order_facts converts them).

with source_orders as (

    select * from {{ source('raw', 'raw_orders') }}

),

cleaned as (

    select
        cast(order_id as {{ dbt.type_bigint() }}) as order_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        {{ to_utc_timestamp('ordered_at') }} as ordered_at,
        lower(trim(status)) as status,
        cast(amount as numeric(12, 2)) as amount,
        cast(discount as numeric(12, 2)) as discount_amount,
        upper(trim(currency)) as currency,
        cast(quantity as integer) as quantity,
        nullif(trim(product_category), '') as product_category,
        lower(trim(payment_method)) as payment_method

    from source_orders

)

select * from cleaned
