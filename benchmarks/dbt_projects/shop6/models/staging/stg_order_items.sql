with

source as (

    select * from {{ source('shop', 'order_items') }}

),

renamed as (

    select

        ----------  ids
        id as order_item_id,
        order_id,
        product_id,

        ---------- numerics
        cast(quantity as integer) as quantity,
        discount_cents / 100.0 as discount

    from source

)

select * from renamed
