with

source as (

    select * from {{ source('shop', 'orders') }}

),

renamed as (

    select

        ----------  ids
        id as order_id,
        customer_id,
        store_id,

        ---------- text
        status,

        ---------- numerics (cents in the source)
        subtotal / 100.0 as subtotal,
        tax_paid / 100.0 as tax_paid,
        (subtotal + tax_paid) / 100.0 as order_total,

        ---------- booleans
        case
            when status = 'returned' then true
            when status = 'return_pending' then true
            else false
        end as is_returned,

        ---------- timestamps
        cast(ordered_at as date) as ordered_on,
        date_trunc('month', ordered_at) as order_month

    from source

)

select * from renamed
